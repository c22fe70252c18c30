"""Cost of the access monitor and of the domain metrics (issue 21 item 4).

Records ``--events`` access events (retrievals by 20 lenders of 2,000 borrowers' data during
working hours, one in fifty refused), sequences them, then times:

* ``read_only`` (the baseline, measured in the same run): reading the same leaves and their
  event rows in batches of ``--batch``, as the monitor does, and nothing else;
* ``monitor``: the monitor's passes over them (counts, rules, totals, cursor; no alert is
  raised by this traffic, which the output checks);
* ``metrics_read``: one read of the figures ``/metrics`` reports (median of 50).

Prints one JSON line per figure.

Usage: python bench/monitor.py [--events 50000] [--batch 2000] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from credit_commons.consent import monitor
from credit_commons.consent.access import AccessAllowed, AccessDenied, lender_actor
from credit_commons.consent.requests import ConsentRequested
from credit_commons.core.db import transaction
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.events import EventRow, EventSpec, record_events
from credit_commons.gateway.monitoring import DomainMetrics
from credit_commons.ledger import service as ledger
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime
from own_state import forget_configured_instance, postgres_schema

DAY0 = datetime(2026, 11, 2, tzinfo=UTC)


def _record(rt: Runtime, count: int) -> None:
    rng = random.Random(1)
    consents = []
    specs = []
    for b in range(2000):
        lender = lender_actor(rt, f"lnd_{b % 20}")
        borrower = rt.pseudonymizer.pseudonym("identity", f"b{b}")
        obj = rt.objects.digest("consent", f"cns_{b}")
        consents.append((lender, borrower, obj))
        specs.append(
            EventSpec(
                ConsentRequested(template="BASIC", purpose="105"), lender, DAY0, borrower, obj
            )
        )
    allowed = AccessAllowed(operation="credentials.read")
    denied = AccessDenied(operation="credentials.read", reason="consent.revoked")
    for i in range(count):
        lender, borrower, obj = rng.choice(consents)
        day, second = divmod(i * 86400 * 5 // count, 86400)  # spread over five days
        at = DAY0 + timedelta(days=day, hours=8, seconds=second * 12 // 24)  # 08:00-20:00
        specs.append(EventSpec(denied if i % 50 == 0 else allowed, lender, at, borrower, obj))
    for start in range(0, len(specs), 10_000):
        with transaction(rt.sessions) as session:
            record_events(session, specs[start : start + 10_000])
        LogWorker(rt, steps=[], probes=[]).run_once()


def _read_only(rt: Runtime, batch: int) -> int:
    position = read = 0
    while True:
        with transaction(rt.read_sessions) as session:
            leaves = ledger.sequenced_after(session, position, batch)
            if not leaves:
                return read
            ids = [event_id for _, event_id, _ in leaves]
            read += len(session.scalars(select(EventRow).where(EventRow.id.in_(ids))).all())
        position = leaves[-1][0] + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    forget_configured_instance()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        schema = postgres_schema() if args.backend == "postgresql" else nullcontext(None)
        with schema as pg_url:
            database = pg_url or f"sqlite:///{root / 'commons.db'}"
            rt = Runtime.build(Settings(data_dir=root / "var", env="test", database_url=database))
            try:
                upgrade(rt.engine)
                _record(rt, args.events)
                started = time.perf_counter()
                read = _read_only(rt, args.batch)
                baseline = time.perf_counter() - started
                started = time.perf_counter()
                alerts = 0
                while (done := monitor.monitor_pass(rt, limit=args.batch)).leaves:
                    alerts += sum(done.alerts.values())
                elapsed = time.perf_counter() - started
                metrics = DomainMetrics(rt, ttl=0.0)
                reads = []
                for _ in range(50):
                    t = time.perf_counter()
                    assert metrics.snapshot().up
                    reads.append(time.perf_counter() - t)
            finally:
                rt.close()
    common = {"bench": "monitor", "backend": args.backend, "events": read, "batch": args.batch}
    for figure, seconds in (("read_only", baseline), ("monitor", elapsed)):
        line = {**common, "figure": figure, "seconds": round(seconds, 3)}
        print(json.dumps({**line, "events_per_s": round(read / seconds)}))
    print(json.dumps({**common, "figure": "monitor_alerts", "alerts": alerts}))
    median_ms = round(statistics.median(reads) * 1000, 2)
    print(json.dumps({**common, "figure": "metrics_read", "median_ms": median_ms}))


if __name__ == "__main__":
    main()
