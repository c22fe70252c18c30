"""Transparency-log figures: sequencing rate, proof latency and audit time at scale.

Prints one JSON line per figure.  Each figure states its target (issue 3) and the baseline
measured in the same run:

* ``sequence_rate`` — events/s through the real sequencer (outbox → entries, tiles, state),
  against a bulk INSERT of the same leaf rows (same batch size) into an empty table.
  Targets: ≥ 50,000/s on SQLite, ≥ 20,000/s on PostgreSQL, and ≥ 50 % of the baseline.
* ``inclusion_proof_latency`` / ``consistency_proof_latency`` — p50/p99 over random
  requests against a log of ``--proof-leaves`` leaves (tiles built through the real tile
  writer; cold tile cache per request batch, see notes).  Target p99 ≤ 2 ms at 10,000,000.
* ``audit_time`` — ``audit_log`` over ``--audit-leaves`` stored entries and a signed
  checkpoint.  Target ≤ 60 s at 10,000,000.
* ``audit_writer_latency`` — the same audit again while a writer thread commits one event
  per transaction (an API write) as fast as it can: the audit's time, the writer's commits
  during it and their latency, against the writer alone in the same run (issue 13 item 5:
  an audit reads a snapshot and never blocks writers).  Target: no commit during the audit
  takes 250 ms or more (an audit lasts seconds: a writer never waits for it), and p99
  during the audit ≤ 10× the writer's p99 alone.

Usage: python bench/ledger.py [--backend sqlite|postgresql|both] [--events 200000]
       [--proof-leaves 10000000] [--audit-leaves 10000000] [--samples 2000]
       [--writes 2000] [--skip proofs,audit]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from credit_commons.core.db import transaction
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.events import LogOutboxRow, record_event
from credit_commons.formats.tlog_tiles import TileCache
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.service import KeyRotated
from credit_commons.ledger import rfc6962
from credit_commons.ledger import service as log_service
from credit_commons.ledger.audit import audit_log
from credit_commons.ledger.continuity import ContinuityGuard
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.models import LogEntryRow, LogStateRow
from credit_commons.ledger.sequencer import leaf_key, sequence_pending
from credit_commons.ledger.tiles import TileHashSource, append_leaf_hashes
from credit_commons.runtime import Runtime
from own_state import forget_configured_instance
from served import percentile

PG_URL = os.environ.get(
    "COMMONS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BATCH = 10_000


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


@contextmanager
def runtime_on(backend: str, tmp: Path) -> Iterator[Runtime]:
    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp / f'bench-{secrets.token_hex(4)}.db'}"
    else:
        schema = f"bench_{secrets.token_hex(4)}"
        admin = sa.create_engine(PG_URL)
        with admin.begin() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    rt = Runtime.build(Settings(data_dir=tmp / "var", database_url=url))
    upgrade(rt.engine)
    try:
        yield rt
    finally:
        rt.close()
        if schema:
            with admin.begin() as c:
                c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def fake_entry(i: int) -> bytes:
    # The shape and size of a real entry (canonical JSON event reference).
    digest = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
    return (
        f'{{"at":"2026-11-22T05:00:00.{i % 1000000:06d}Z","digest":"{digest}",'
        f'"id":"evt_{i:026d}","type":"access.allowed","v":1}}'
    ).encode()


def leaf_row(index: int, entry: bytes) -> dict[str, object]:
    """A ``log_entries`` row exactly as the sequencer writes it."""
    return {
        "leaf_index": index,
        "event_id": f"evt_{index:026d}",
        "entry": entry,
        "leaf_key": leaf_key(hashlib.sha256(b"\x00" + entry).digest()),
    }


def fill_outbox(rt: Runtime, start: int, count: int) -> None:
    table = LogOutboxRow.__table__
    with transaction(rt.sessions) as session:
        for lo in range(start, start + count, BATCH):
            session.execute(
                sa.insert(table),
                [
                    {"event_id": f"evt_{i:026d}", "entry": fake_entry(i)}
                    for i in range(lo, min(lo + BATCH, start + count))
                ],
            )


def bench_sequencing(backend: str, tmp: Path, events: int) -> None:
    with runtime_on(backend, tmp) as rt:
        fill_outbox(rt, 0, events)
        start = time.perf_counter()
        result = sequence_pending(rt.sessions, limit=BATCH, cache=TileCache())
        seq_rate = result.appended / (time.perf_counter() - start)
        assert result.size == events
    with runtime_on(backend, tmp) as rt:
        table = LogEntryRow.__table__
        start = time.perf_counter()
        for lo in range(0, events, BATCH):
            with transaction(rt.sessions) as session:
                session.execute(
                    sa.insert(table),
                    [leaf_row(i, fake_entry(i)) for i in range(lo, min(lo + BATCH, events))],
                )
        base_rate = events / (time.perf_counter() - start)
    target = 50_000 if backend == "sqlite" else 20_000
    emit(
        figure="sequence_rate",
        backend=backend,
        events=events,
        events_per_s=round(seq_rate),
        baseline="bulk INSERT of the same leaf rows, same batches",
        baseline_per_s=round(base_rate),
        ratio=round(seq_rate / base_rate, 3),
        target_per_s=target,
        target_ratio=0.5,
        meets_target=seq_rate >= target and seq_rate / base_rate >= 0.5,
    )


def build_log(rt: Runtime, leaves: int, *, with_entries: bool) -> None:
    """A log of ``leaves`` leaves through the real tile writer, state and signed checkpoint.

    Entries are stored too when the audit needs them; the proofs read tiles only.
    """
    table = LogEntryRow.__table__
    chunk = 500_000
    sha = hashlib.sha256
    built = time.perf_counter()
    for lo in range(0, leaves, chunk):
        hi = min(lo + chunk, leaves)
        entries = [fake_entry(i) for i in range(lo, hi)]
        with transaction(rt.sessions) as session:
            if with_entries:
                for b in range(0, len(entries), BATCH):
                    session.execute(
                        sa.insert(table),
                        [leaf_row(lo + b + j, e) for j, e in enumerate(entries[b : b + BATCH])],
                    )
            append_leaf_hashes(session, lo, [sha(b"\x00" + e).digest() for e in entries])
        print(
            f"# built {hi:,} / {leaves:,} leaves ({time.perf_counter() - built:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    identity = log_identity(rt)
    with transaction(rt.sessions) as session:
        root = rfc6962.root_from_source(leaves, TileHashSource(session))
        session.execute(
            sa.update(LogStateRow).where(LogStateRow.id == 1).values(size=leaves, root=bytes(root))
        )
        guard = ContinuityGuard(rt.settings)
        log_service.publish_checkpoint(session, rt.key_store, rt.clock, identity, guard=guard)


def bench_proofs(backend: str, rt: Runtime, leaves: int, samples: int) -> None:
    rng = random.Random(1)
    cache = (
        TileCache()
    )  # the app's process-wide cache: upper tiles stay warm, leaf tiles mostly miss
    for kind in ("inclusion", "consistency"):
        times = []
        for _ in range(samples):
            with transaction(rt.read_sessions) as session:
                source = TileHashSource(session, cache)
                start = time.perf_counter()
                if kind == "inclusion":
                    rfc6962.inclusion_proof(rng.randrange(leaves), leaves, source)
                else:
                    rfc6962.consistency_proof(rng.randrange(1, leaves), leaves, source)
                times.append(time.perf_counter() - start)
        p99 = percentile(times, 0.99)
        emit(
            figure=f"{kind}_proof_latency",
            backend=backend,
            leaves=leaves,
            samples=samples,
            p50_ms=round(statistics.median(times) * 1000, 3),
            p99_ms=round(p99 * 1000, 3),
            target_p99_ms=2.0,
            meets_target=p99 <= 0.002,
            note="random index/size; tile reads through the process-wide LRU cache (4096 tiles)",
        )


def bench_audit(backend: str, rt: Runtime, leaves: int) -> None:
    vkey = log_identity(rt).vkey
    start = time.perf_counter()
    report = audit_log(rt.engine, vkey)
    elapsed = time.perf_counter() - start
    assert report.size == leaves
    emit(
        figure="audit_time",
        backend=backend,
        leaves=leaves,
        seconds=round(elapsed, 1),
        leaves_per_s=round(leaves / elapsed),
        target_s_at_10m=60,
        meets_target=elapsed * (10_000_000 / leaves) <= 60,
    )


def write_one(rt: Runtime, i: int) -> float:
    """One API-like write (an event in its own transaction); returns its latency."""
    start = time.perf_counter()
    with transaction(rt.sessions) as session:
        record_event(
            session,
            KeyRotated(key_name="bench", version=i + 1, key_type=KeyType.ED25519, kid=f"b{i}"),
            actor=rt.operator_actor(),
            at=rt.clock.now(),
        )
    return time.perf_counter() - start


def bench_audit_with_writer(backend: str, rt: Runtime, leaves: int, tmp: Path, writes: int) -> None:
    """``commons log audit`` in its own process (as an operator runs it) beside a writer."""
    baseline = [write_one(rt, i) for i in range(writes)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    env.update(
        COMMONS_DATA_DIR=str(rt.settings.data_dir),
        COMMONS_DATABASE_URL=rt.settings.resolved_database_url,
        COMMONS_ANCHOR_BACKENDS="[]",
    )
    during: list[float] = []
    audit = subprocess.Popen(
        [sys.executable, "-m", "credit_commons.cli", "log", "audit", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp,
    )
    start = time.perf_counter()
    i = len(baseline)
    while audit.poll() is None:
        during.append(write_one(rt, i))
        i += 1
    elapsed = time.perf_counter() - start
    out, err = audit.communicate()
    if audit.returncode != 0:
        raise SystemExit(f"audit failed: {err.decode()[-500:]}")
    assert json.loads(out)["size"] == leaves
    p99, base_p99 = percentile(during, 0.99), percentile(baseline, 0.99)
    emit(
        figure="audit_writer_latency",
        backend=backend,
        leaves=leaves,
        audit_process_seconds=round(elapsed, 1),
        writer_commits_during_audit=len(during),
        writer_p50_ms=round(statistics.median(during) * 1000, 2),
        writer_p99_ms=round(p99 * 1000, 2),
        writer_max_ms=round(max(during) * 1000, 2),
        baseline=f"the same writer alone, same run ({writes:,} commits)",
        baseline_p50_ms=round(statistics.median(baseline) * 1000, 2),
        baseline_p99_ms=round(base_p99 * 1000, 2),
        meets_target=max(during) < 0.25 and p99 <= 10 * base_p99,
        note="`commons log audit` as a subprocess (start-up included); one writer thread",
    )


def main() -> int:
    forget_configured_instance()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--proof-leaves", type=int, default=10_000_000)
    parser.add_argument("--audit-leaves", type=int, default=10_000_000)
    parser.add_argument("--samples", type=int, default=2_000, help="proofs of each kind")
    parser.add_argument(
        "--writes", type=int, default=2_000, help="the writer's commits alone (the baseline)"
    )
    parser.add_argument("--skip", default="", help="comma list of: sequence, proofs, audit")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            if "sequence" not in skip:
                bench_sequencing(backend, Path(tmp), args.events)
            wants = {"proofs", "audit"} - skip
            if not wants:
                continue
            leaves = args.audit_leaves if "audit" in wants else args.proof_leaves
            with runtime_on(backend, Path(tmp)) as rt:
                build_log(rt, leaves, with_entries="audit" in wants)
                if "proofs" in wants:
                    bench_proofs(backend, rt, leaves, args.samples)
                if "audit" in wants:
                    bench_audit(backend, rt, leaves)
                    bench_audit_with_writer(backend, rt, leaves, Path(tmp), args.writes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
