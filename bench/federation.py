"""Figures of issue 20 for the full node (item 2), on loopback: a platform's runtime (its
own database), a real ``nats-server -js`` and full nodes in this process, each following it
through its own durable consumers (within the default quotas) into its own SQLite
mirror, verifying every message before storing it (an event by its JWS under the pinned log
key, or by its leaf once a verified checkpoint covers it; schema, digest, blob CID;
checkpoints against the mirrored tree).  The platform's HTTP API (entry bundles, log key)
is a ``commons serve`` of its own (uvicorn, one worker, no log worker, on a free loopback
port), as a node follows a platform in another process or machine; ``--in-process`` serves
it the old way (until 2026-12-07's third round), with ``commons serve``'s app over a
TestClient in the bench's process, which then carries the app's CPU (and its GIL share).
Blobs come from the bench (the events are recorded directly, as in
bench/federation_publish.py).

One JSON line per figure:

* ``raw_consume`` (the baseline): the same bodies pulled from the platform's
  ``COMMONS_EVENTS`` stream by a durable pull consumer with the node's batch size,
  acknowledged one by one as the node does — no verification, no storage;
* ``raw_publish`` (the baseline): the same bodies published to a stream of the platform's
  kind (file storage), every acknowledgement awaited per 500 as the publisher does;
* ``catch_up``: ``--events`` reputation events sequenced (a checkpoint per 5,000) and
  published before a fresh node starts; seconds until its mirror holds every event and the
  last checkpoint, the rate (events/s into the mirror, with verification), how many were
  checked by their signatures and how many by their checkpoint's leaves, and the ratio to
  the raw consume;

``raw_consume`` and ``catch_up`` also give the CPU per event of this process (for the
catch-up: the follower, and with ``--in-process`` the platform's app serving entry
bundles), of nats-server and (the catch-up) of the platform's server process: on a machine
of two cores, what they add up to bounds the rate whatever the load.  The
catch-up's share of the follower's batches (thread time of ``Follower._process``: the
verification and storage) is given per stream, events and checkpoints (whose entry
bundles are fetched, hashed and appended to the mirrored tree); the rest of the process
is the NATS client and the event loop (and with ``--in-process`` the platform's app);
* ``propagation``: with two nodes following, ``--rounds`` single events, each recorded,
  sequenced and published (acknowledged by JetStream); the time from the acknowledgement to
  the event stored in both mirrors, p50/p95/max.

Each line carries the one-minute load average when it was measured.  The prepared platform
(its database, keys and JetStream store) is cached under ``var/bench/`` keyed by the schema's
head and ``--events`` and copied for each run (``--no-cache``: prepare afresh).

Usage: python bench/federation.py [--events 5000] [--rounds 50] [--batch 256]
       [--baseline-events N] [--no-cache] [--prepare-only] [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import nats
from fastapi.testclient import TestClient
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from credit_commons.core.clock import SystemClock
from credit_commons.core.db import make_engine, make_sessionmaker, transaction
from credit_commons.core.encoding import canonical_json
from credit_commons.core.migrate import head_revision, upgrade
from credit_commons.core.settings import Settings
from credit_commons.events import EventSpec, record_events
from credit_commons.federation import Publisher
from credit_commons.gateway.app import create_app
from credit_commons.ledger import service as ledger_service
from credit_commons.ledger.worker import LogWorker
from credit_commons.node import Follower, Mirror, Platform, Quotas
from credit_commons.node import store as node_store
from credit_commons.reputation import blob_cid
from credit_commons.reputation.service import EventRecorded
from credit_commons.runtime import Runtime
from federation_publish import nats_server
from own_state import forget_configured_instance
from served import commons_server, cpu_seconds, free_port, percentile, process_tree

BLOBS: dict[str, bytes] = {}
CACHE = Path(__file__).resolve().parents[1] / "var" / "bench"
PREPARED_VERSION = 1
"""Raise when what a prepared platform holds changes: other versions are not used."""


class _Forward(httpx.BaseTransport):
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.client.get(request.url.raw_path.decode())
        headers = {"content-type": answer.headers.get("content-type", "")}
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)


class _Platform(Platform):
    def blob(self, cid: str) -> bytes:
        return BLOBS[cid]


def _blob(i: int) -> str:
    blob = canonical_json({"bench": i})
    cid = blob_cid(blob)
    BLOBS[cid] = blob
    return cid


def _record(rt: Runtime, start: int, count: int) -> None:
    sender = rt.pseudonymizer.pseudonym("did", "did:key:bench-sender")
    for first in range(start, start + count, 5_000):
        specs = []
        for i in range(first, min(start + count, first + 5_000)):
            cid = _blob(i)
            specs.append(
                EventSpec(
                    EventRecorded(
                        cid=cid,
                        kind="vouch",
                        ctx=f"ctx{i % 4}",
                        epoch="e1",
                        from_sha256=hashlib.sha256(b"sender").hexdigest(),
                        to_sha256=hashlib.sha256(str(i).encode()).hexdigest(),
                    ),
                    actor=sender,
                    subject=rt.pseudonymizer.pseudonym("did", f"did:key:{i}"),
                    at=rt.clock.now(),
                )
            )
        with transaction(rt.sessions) as session:
            record_events(session, specs)
        LogWorker(rt, steps=[]).run_once(force_checkpoint=True)


def _publish(publisher: Publisher) -> None:
    while publisher.run_pass():
        pass


class _Served:
    """Where the platform's HTTP API is: a base URL, the transport to it (None: the
    network) and the server's process (None: in this process)."""

    def __init__(self, base: str, transport: httpx.BaseTransport | None, pid: int | None):
        self.base, self.transport, self.pid = base, transport, pid

    def cpu(self) -> float:
        """CPU seconds the server's processes used so far (0 in this process: counted as
        this process's)."""
        return 0.0 if self.pid is None else sum(map(cpu_seconds, process_tree(self.pid)))


@contextmanager
def _serving(root: Path, rt: Runtime, settings: Settings, in_process: bool) -> Iterator[_Served]:
    """The platform under ``root`` served: a ``commons serve`` (one worker, no log worker)
    on a free loopback port, or with ``in_process`` its app over a TestClient."""
    if in_process:
        client = TestClient(create_app(settings, runtime=rt))
        yield _Served("http://127.0.0.1", _Forward(client), None)
        return
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")},
        "COMMONS_ENV": "test",
        "COMMONS_DATA_DIR": str(root / "var"),
        "COMMONS_DATABASE_URL": f"sqlite:///{root / 'platform.db'}",
        "COMMONS_PUBLIC_URL": base,
        # One node fetches every entry bundle of the log (4,000 for 1,000,000 events): the
        # platform's per-address limit on tiles (1,200 a minute) would measure the limiter.
        "COMMONS_RATE_LIMITS": json.dumps(
            {
                f"{group}.ip": "100000000/minute"
                for group in ("tiles", "log", "well-known", "operations")
            }
        ),
        "COMMONS_LOG_LEVEL": "WARNING",
    }
    with commons_server(env, port, workers=1) as pid:
        yield _Served(base, None, pid)


class _Node:
    def __init__(self, root: Path, name: str, served: _Served, url: str, batch: int) -> None:
        self.engine = make_engine(f"sqlite:///{root / f'{name}.db'}")
        upgrade(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        platform = _Platform(served.base, transport=served.transport)
        self.mirror = Mirror(self.sessions, platform, SystemClock())
        self.mirror.start()
        self.follower = Follower(
            self.mirror, url, f"bench-{name}", batch=batch, idle=0.05, quotas=Quotas()
        )
        # The CPU of the follower's batches (verification and storage) per stream: thread
        # time of Follower._process, which runs on a worker thread of its own per batch.
        self.ingest_cpu: dict[str, float] = {}
        lock, process = threading.Lock(), self.follower._process

        def timed(stream: str, messages: list[Any]) -> int:
            started = time.thread_time()
            try:
                return process(stream, messages)
            finally:
                with lock:
                    spent = time.thread_time() - started
                    self.ingest_cpu[stream] = self.ingest_cpu.get(stream, 0.0) + spent

        self.follower._process = timed  # type: ignore[method-assign]

    def state(self) -> tuple[int, int]:
        with transaction(self.sessions) as session:
            events = node_store.counter(session, "accepted.COMMONS_EVENTS")
            latest = node_store.latest_checkpoint(session)
        return events, 0 if latest is None else int(latest.size)

    def counters(self) -> dict[str, int]:
        with transaction(self.sessions) as session:
            return node_store.counters(session)


def _log_size(rt: Runtime) -> int:
    with transaction(rt.read_sessions) as session:
        latest = ledger_service.latest_checkpoint(session)
        return 0 if latest is None else int(latest.size)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _server_cpu() -> float:
    """CPU seconds (user + system) the nats-server children of this process used so far."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()
        if name == "nats-server" and int(fields[1]) == os.getpid():
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _emit(figure: str, **values: Any) -> None:
    print(json.dumps({"bench": "federation_node", "figure": figure, **values}), flush=True)


async def _raw(url: str, count: int, batch: int) -> dict[str, float]:
    """The baselines: pull ``count`` bodies from COMMONS_EVENTS as the node does (ack each),
    then publish the same bodies to a stream of the same kind (acks awaited per 500); with
    the CPU the consume took in this process and in nats-server."""
    nc = await nats.connect(servers=[url])
    try:
        js = nc.jetstream(timeout=60.0)
        config = ConsumerConfig(
            durable_name="bench-raw",
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30.0,
            max_ack_pending=4 * batch,
        )
        await js.add_consumer("COMMONS_EVENTS", config)
        sub = await js.pull_subscribe_bind(durable="bench-raw", stream="COMMONS_EVENTS")
        bodies: list[tuple[str, bytes]] = []
        started, cpu, server = time.perf_counter(), time.process_time(), _server_cpu()
        while len(bodies) < count:
            for message in await sub.fetch(batch, timeout=5.0):
                bodies.append((message.subject, message.data))
                await message.ack()
        consumed = time.perf_counter() - started
        consume_cpu, server_cpu = time.process_time() - cpu, _server_cpu() - server
        await js.delete_consumer("COMMONS_EVENTS", "bench-raw")
        await js.add_stream(
            StreamConfig(name="BENCH_RAW", subjects=["benchraw.>"], storage=StorageType.FILE)
        )
        started = time.perf_counter()
        for first in range(0, len(bodies), 500):
            futures = [
                await js.publish_async(f"benchraw.{subject}", body, stream="BENCH_RAW")
                for subject, body in bodies[first : first + 500]
            ]
            await asyncio.gather(*futures)
        published = time.perf_counter() - started
        await js.delete_stream("BENCH_RAW")
        return {
            "consume_s": consumed,
            "publish_s": published,
            "consume_cpu_s": consume_cpu,
            "server_cpu_s": server_cpu,
        }
    finally:
        await nc.close()


def _prepare(root: Path, events: int, url: str) -> None:
    """Record, sequence and publish ``events`` events into the platform under ``root``."""
    settings = Settings(
        data_dir=root / "var", env="test", database_url=f"sqlite:///{root / 'platform.db'}"
    )
    rt = Runtime.build(settings)
    upgrade(rt.engine)
    publisher = Publisher(rt, url, batch=500)
    try:
        started = time.perf_counter()
        _record(rt, 0, events)
        recorded = time.perf_counter()
        _publish(publisher)
        print(
            f"prepared {events:,} events: recorded and sequenced in {recorded - started:.0f} s,"
            f" published in {time.perf_counter() - recorded:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    finally:
        publisher.close()
        rt.close()


def _prepared(root: Path | None, events: int, cache: bool) -> None:
    """The prepared platform under ``root``: copied from the cache (made first when absent),
    or prepared in place with ``cache`` off."""
    key = f"federation-{head_revision()}-v{PREPARED_VERSION}-{events}"
    cached = CACHE / key
    if not cache or not (cached / "complete").exists():
        target = cached if cache or root is None else root
        if cache and cached.exists():
            shutil.rmtree(cached)  # an unfinished one
        target.mkdir(parents=True, exist_ok=True)
        with nats_server(target / "jetstream") as url:
            _prepare(target, events, url)
        if not cache:
            return
        (cached / "complete").write_text("")
    if root is None:
        return
    for name in ("platform.db", "var", "jetstream"):
        source, copy = cached / name, root / name
        if source.is_dir():
            shutil.copytree(source, copy)
        elif source.exists():
            shutil.copy2(source, copy)
    for suffix in ("-wal", "-shm"):
        if (cached / f"platform.db{suffix}").exists():
            shutil.copy2(cached / f"platform.db{suffix}", root / f"platform.db{suffix}")


def _measure(
    args: argparse.Namespace,
    root: Path,
    url: str,
    rt: Runtime,
    publisher: Publisher,
    served: _Served,
) -> None:
    """The four figures, the platform prepared under ``root`` and served by ``served``."""
    size = _log_size(rt)
    load = _load()
    moved = min(args.baseline_events or args.events, args.events)
    raw = asyncio.run(_raw(url, moved, args.batch))
    consume_rate = round(moved / raw["consume_s"])
    _emit(
        "raw_consume",
        events=moved,
        batch=args.batch,
        seconds=round(raw["consume_s"], 2),
        events_per_s=consume_rate,
        client_cpu_us_per_event=round(raw["consume_cpu_s"] / moved * 1e6, 1),
        server_cpu_us_per_event=round(raw["server_cpu_s"] / moved * 1e6, 1),
        load_1m=load,
    )
    _emit(
        "raw_publish",
        events=moved,
        seconds=round(raw["publish_s"], 2),
        events_per_s=round(moved / raw["publish_s"]),
        load_1m=load,
    )

    load = _load()
    first = _Node(root, "b", served, url, args.batch)
    started, cpu, server = time.perf_counter(), time.process_time(), _server_cpu()
    platform_cpu = served.cpu()
    first.follower.start()
    report = 100_000
    while (state := first.state()) != (args.events, size):
        if state[0] >= report:  # progress, for a run cut short
            print(
                f"{state[0]:,} events after {time.perf_counter() - started:.0f} s, load {_load()}",
                file=sys.stderr,
                flush=True,
            )
            report += 100_000
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    cpu, server = time.process_time() - cpu, _server_cpu() - server
    platform_cpu = served.cpu() - platform_cpu
    counters = first.counters()
    rate = round(args.events / elapsed)
    _emit(
        "catch_up",
        events=args.events,
        batch=args.batch,
        seconds=round(elapsed, 2),
        events_per_s=rate,
        verified_by_checkpoint=counters.get("verified.checkpoint", 0),
        verified_by_signature=counters.get("verified.signature", 0),
        dropped=sum(v for k, v in counters.items() if k.startswith("dropped.")),
        baseline_raw_consume_events_per_s=consume_rate,
        ratio_to_baseline=round(rate / consume_rate, 3),
        process_cpu_us_per_event=round(cpu / args.events * 1e6, 1),
        events_batches_cpu_us_per_event=round(
            first.ingest_cpu.get("COMMONS_EVENTS", 0.0) / args.events * 1e6, 1
        ),
        checkpoint_batches_cpu_us_per_event=round(
            first.ingest_cpu.get("COMMONS_CHECKPOINTS", 0.0) / args.events * 1e6, 1
        ),
        server_cpu_us_per_event=round(server / args.events * 1e6, 1),
        platform="in this process" if served.pid is None else "commons serve, 1 worker",
        platform_cpu_us_per_event=None
        if served.pid is None
        else round(platform_cpu / args.events * 1e6, 1),
        load_1m=load,
        load_1m_after=_load(),
    )

    if args.rounds:
        load = _load()
        second = _Node(root, "c", served, url, args.batch)
        second.follower.start()
        while second.state() != (args.events, size):
            time.sleep(0.05)
        samples = []
        for n in range(args.rounds):
            _record(rt, args.events + n, 1)
            _publish(publisher)
            acked = time.perf_counter()
            want = args.events + n + 1
            while min(first.state()[0], second.state()[0]) < want:
                time.sleep(0.001)
            samples.append((time.perf_counter() - acked) * 1000)
        _emit(
            "propagation",
            rounds=args.rounds,
            ms_p50=round(percentile(samples, 0.5), 1),
            ms_p95=round(percentile(samples, 0.95), 1),
            ms_max=round(max(samples), 1),
            load_1m=load,
        )
        second.follower.stop()
    first.follower.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--batch", type=int, default=256, help="the follower's fetch size")
    parser.add_argument("--no-cache", action="store_true", help="prepare in a temporary dir")
    parser.add_argument(
        "--baseline-events", type=int, help="how many of the bodies the baselines move (all)"
    )
    parser.add_argument(
        "--prepare-only", action="store_true", help="fill the cache, measure nothing"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="serve the platform's app in this process (a TestClient), the old way",
    )
    args = parser.parse_args()
    forget_configured_instance()
    if args.prepare_only:
        _prepared(None, args.events, cache=True)
        return
    for i in range(args.events):
        _blob(i)
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE if not args.no_cache else None) as tmp:
        root = Path(tmp)
        _prepared(root, args.events, not args.no_cache)
        with nats_server(root / "jetstream") as url:
            settings = Settings(
                data_dir=root / "var", env="test", database_url=f"sqlite:///{root / 'platform.db'}"
            )
            rt = Runtime.build(settings)
            upgrade(rt.engine)
            publisher = Publisher(rt, url, batch=500)
            try:
                with _serving(root, rt, settings, args.in_process) as served:
                    _measure(args, root, url, rt, publisher, served)
            finally:
                publisher.close()
                rt.close()


if __name__ == "__main__":
    main()
