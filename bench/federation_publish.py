"""Throughput of the federation publisher (issue 20 item 1): spine events already sequenced
into the log, published to a real NATS JetStream (its own ``nats-server -js`` on a free
loopback port) with signed bodies, every acknowledgement awaited and the cursor committed
after each batch.  Prints one JSON line.

Usage: python bench/federation_publish.py [--events 20000] [--batch 500]
       [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from credit_commons.core.db import transaction
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.events import EventSpec, record_events
from credit_commons.federation import Publisher
from credit_commons.federation.publisher import SPINE, read_cursor
from credit_commons.ledger.worker import LogWorker
from credit_commons.reputation.service import EventRecorded
from credit_commons.runtime import Runtime
from own_state import forget_configured_instance, postgres_schema
from served import free_port


@contextmanager
def nats_server(store: Path) -> Iterator[str]:
    """A ``nats-server -js`` on a free loopback port, stopped afterwards."""
    binary = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin")
    if binary is None:
        raise SystemExit("nats-server is not installed (scripts/ensure-system-deps.sh)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(400):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.025)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()


def _record(rt: Runtime, count: int) -> None:
    sender = rt.pseudonymizer.pseudonym("did", "did:key:bench-sender")
    now = rt.clock.now()
    for start in range(0, count, 10_000):
        specs = [
            EventSpec(
                EventRecorded(cid=f"bafy{i:08d}", kind="vouch", ctx=f"ctx{i % 4}", epoch="e1"),
                actor=sender,
                subject=rt.pseudonymizer.pseudonym("did", f"did:key:{i}"),
                at=now,
            )
            for i in range(start, min(count, start + 10_000))
        ]
        with transaction(rt.sessions) as session:
            record_events(session, specs)
        LogWorker(rt, steps=[]).run_once()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    forget_configured_instance()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        schema = postgres_schema() if args.backend == "postgresql" else nullcontext(None)
        with schema as pg_url, nats_server(root / "jetstream") as url:
            database = pg_url or f"sqlite:///{root / 'commons.db'}"
            rt = Runtime.build(Settings(data_dir=root / "var", env="test", database_url=database))
            try:
                upgrade(rt.engine)
                _record(rt, args.events)
                publisher = Publisher(rt, url, batch=args.batch)
                started = time.perf_counter()
                passes = 0
                while True:
                    publisher.run_pass()
                    passes += 1
                    with transaction(rt.read_sessions) as session:
                        if read_cursor(session, SPINE) >= args.events:
                            break
                elapsed = time.perf_counter() - started
                publisher.close()
            finally:
                rt.close()
    print(
        json.dumps(
            {
                "bench": "federation_publish",
                "backend": args.backend,
                "events": args.events,
                "batch": args.batch,
                "passes": passes,
                "seconds": round(elapsed, 3),
                "events_per_s": round(args.events / elapsed),
            }
        )
    )


if __name__ == "__main__":
    main()
