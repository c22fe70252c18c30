"""The full node's ingestion cost per event, in this process and without NATS in the timed
loop (issue 20, item 2): the bodies of a prepared platform (bench/federation.py's cache)
are pulled from its JetStream once; a fresh node mirrors its checkpoints (untimed), then
its events go through :meth:`Mirror.accept_batch` ``--batch`` at a time, exactly as the
follower hands them over.  Every check runs; the figure is what verification and storage
cost the follower's thread per event.

One JSON line: ``ingest`` — events, µs of CPU (``process_time``) and of wall time per
event, how many were checked by their checkpoint's leaves, and the one-minute load; the
baseline in the same line: ``parse_us_per_event``, the CPU of :func:`receive` alone (the
size, and the first reading of the payload) over the same bodies.  ``--profile N``: also
the N costliest functions (cProfile, cumulative) on stderr.

Usage: python bench/federation_ingest.py [--events 20000] [--batch 256] [--profile 0]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

import nats
from fastapi.testclient import TestClient
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from credit_commons.core.clock import SystemClock
from credit_commons.core.db import make_engine, make_sessionmaker, transaction
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.node import Mirror
from credit_commons.node import store as node_store
from credit_commons.node.messages import receive
from credit_commons.runtime import Runtime
from federation import CACHE, _blob, _Forward, _Platform, _prepared
from federation_publish import nats_server
from own_state import forget_configured_instance


async def _bodies(url: str, stream: str) -> list[tuple[bytes, str]]:
    """Every message of ``stream`` as (body, subject), in order."""
    nc = await nats.connect(servers=[url])
    try:
        js = nc.jetstream(timeout=60.0)
        info = await js.stream_info(stream)
        config = ConsumerConfig(
            durable_name="bench-ingest",
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.ALL,
        )
        await js.add_consumer(stream, config)
        sub = await js.pull_subscribe_bind(durable="bench-ingest", stream=stream)
        out: list[tuple[bytes, str]] = []
        while len(out) < info.state.messages:
            out.extend((m.data, m.subject) for m in await sub.fetch(1024, timeout=5.0))
        await js.delete_consumer(stream, "bench-ingest")
        return out
    finally:
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest")
    args = parser.parse_args()
    forget_configured_instance()
    for i in range(args.events):
        _blob(i)
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        root = Path(tmp)
        _prepared(root, args.events, True)
        with nats_server(root / "jetstream") as url:
            events = asyncio.run(_bodies(url, "COMMONS_EVENTS"))
            checkpoints = asyncio.run(_bodies(url, "COMMONS_CHECKPOINTS"))
        settings = Settings(
            data_dir=root / "var", env="test", database_url=f"sqlite:///{root / 'platform.db'}"
        )
        rt = Runtime.build(settings)
        try:
            client = TestClient(create_app(settings, runtime=rt))
            engine = make_engine(f"sqlite:///{root / 'node.db'}")
            upgrade(engine)
            sessions = make_sessionmaker(engine)
            platform = _Platform("http://127.0.0.1", transport=_Forward(client))
            mirror = Mirror(sessions, platform, SystemClock())
            mirror.start()
            mirror.accept_batch("COMMONS_CHECKPOINTS", checkpoints)

            started = time.process_time()
            for body, subject in events:
                receive(body, subject, "COMMONS_EVENTS")
            parse_us = (time.process_time() - started) / len(events) * 1e6

            load = round(os.getloadavg()[0], 2)
            profiler = cProfile.Profile() if args.profile else None
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            outcomes: dict[str, int] = {}
            for first in range(0, len(events), args.batch):
                chunk = events[first : first + args.batch]
                for outcome in mirror.accept_batch("COMMONS_EVENTS", chunk):
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if profiler is not None:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            with transaction(sessions) as session:
                counters = node_store.counters(session)
            print(
                json.dumps(
                    {
                        "bench": "federation_node",
                        "figure": "ingest",
                        "events": len(events),
                        "batch": args.batch,
                        "cpu_us_per_event": round(cpu / len(events) * 1e6, 1),
                        "wall_us_per_event": round(wall / len(events) * 1e6, 1),
                        "parse_us_per_event": round(parse_us, 1),
                        "outcomes": outcomes,
                        "verified_by_checkpoint": counters.get("verified.checkpoint", 0),
                        "profiled": profiler is not None,
                        "load_1m": load,
                    }
                ),
                flush=True,
            )
            if profiler is not None:
                stats = pstats.Stats(profiler, stream=sys.stderr)
                stats.sort_stats("cumulative").print_stats(args.profile)
                stats.sort_stats("tottime").print_stats(args.profile)
            engine.dispose()
        finally:
            rt.close()


if __name__ == "__main__":
    main()
