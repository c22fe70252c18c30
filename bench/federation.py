"""Figures of issue 20 for the full node (item 2), on loopback: a platform's runtime (its
own database), a real ``nats-server -js`` and full nodes in this process, each following it
through its own durable consumers (within the default quotas) into its own SQLite
mirror, verifying every message before storing it (JWS under the pinned log key, schema,
digest, blob CID, checkpoints against the mirrored tree).  The platform's HTTP API (entry
bundles, log key) is served by ``commons serve``'s app over a TestClient; blobs come from
the bench (the events are recorded directly, as in bench/federation_publish.py).

* ``catch_up``: ``--events`` reputation events sequenced and published before a fresh
  node starts; seconds until its mirror holds every event and the last checkpoint, and the
  rate (events/s into the mirror, with verification);
* ``propagation``: with two nodes following, ``--rounds`` single events, each recorded,
  sequenced and published (acknowledged by JetStream); the time from the acknowledgement to
  the event stored in both mirrors, p50/p95/max.

Prints one JSON line.  Usage: python bench/federation.py [--events 5000] [--rounds 50]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from credit_commons.core.clock import SystemClock
from credit_commons.core.db import make_engine, make_sessionmaker, transaction
from credit_commons.core.encoding import canonical_json
from credit_commons.core.migrate import upgrade
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
from served import percentile

BLOBS: dict[str, bytes] = {}


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


def _record(rt: Runtime, start: int, count: int) -> None:
    sender = rt.pseudonymizer.pseudonym("did", "did:key:bench-sender")
    for first in range(start, start + count, 5_000):
        specs = []
        for i in range(first, min(start + count, first + 5_000)):
            blob = canonical_json({"bench": i})
            cid = blob_cid(blob)
            BLOBS[cid] = blob
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


class _Node:
    def __init__(self, root: Path, name: str, client: TestClient, url: str) -> None:
        self.engine = make_engine(f"sqlite:///{root / f'{name}.db'}")
        upgrade(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        platform = _Platform("http://127.0.0.1", transport=_Forward(client))
        self.mirror = Mirror(self.sessions, platform, SystemClock())
        self.mirror.start()
        self.follower = Follower(
            self.mirror, url, f"bench-{name}", batch=256, idle=0.05, quotas=Quotas()
        )

    def state(self) -> tuple[int, int]:
        with transaction(self.sessions) as session:
            events = node_store.counter(session, "accepted.COMMONS_EVENTS")
            latest = node_store.latest_checkpoint(session)
        return events, 0 if latest is None else int(latest.size)


def _log_size(rt: Runtime) -> int:
    with transaction(rt.read_sessions) as session:
        latest = ledger_service.latest_checkpoint(session)
        return 0 if latest is None else int(latest.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    forget_configured_instance()
    result: dict[str, object] = {"bench": "federation_node", "events": args.events}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with nats_server(root / "jetstream") as url:
            database = f"sqlite:///{root / 'platform.db'}"
            settings = Settings(data_dir=root / "var", env="test", database_url=database)
            rt = Runtime.build(settings)
            upgrade(rt.engine)
            client = TestClient(create_app(settings, runtime=rt))
            publisher = Publisher(rt, url, batch=500)
            try:
                _record(rt, 0, args.events)
                _publish(publisher)
                size = _log_size(rt)
                first = _Node(root, "b", client, url)
                started = time.perf_counter()
                first.follower.start()
                while first.state() != (args.events, size):
                    time.sleep(0.01)
                elapsed = time.perf_counter() - started
                result["catch_up_seconds"] = round(elapsed, 2)
                result["catch_up_events_per_s"] = round(args.events / elapsed)
                result["catch_up_1m_extrapolated_s"] = round(1_000_000 / (args.events / elapsed))

                second = _Node(root, "c", client, url)
                second.follower.start()
                while second.state() != (args.events, size):
                    time.sleep(0.01)
                samples = []
                for n in range(args.rounds):
                    _record(rt, args.events + n, 1)
                    _publish(publisher)
                    acked = time.perf_counter()
                    want = args.events + n + 1
                    while min(first.state()[0], second.state()[0]) < want:
                        time.sleep(0.001)
                    samples.append((time.perf_counter() - acked) * 1000)
                result["propagation_rounds"] = args.rounds
                result["propagation_ms_p50"] = round(percentile(samples, 0.5), 1)
                result["propagation_ms_p95"] = round(percentile(samples, 0.95), 1)
                result["propagation_ms_max"] = round(max(samples), 1)
                first.follower.stop()
                second.follower.stop()
            finally:
                publisher.close()
                rt.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
