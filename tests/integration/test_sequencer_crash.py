"""Kill the sequencer (SIGKILL) at random points during a 100k-event run, on both databases.

After every restart the log must hold exactly the recorded events — no gap, no duplicate —
and every checkpoint signed along the way must be consistent with the final tree.

The run is bounded by the number of kills and by the log's progress, never by wall time: a
loaded machine makes it slower, not different (issue 12 item 18).  Each kill waits for a
condition — the worker started, or the log reached a leaf count drawn at random from the
next stretch of the run — and the stretches cover the whole run, so the final clean pass
only sequences the last one.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.events import EventRow, LogOutboxRow, record_event
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.service import KeyRotated
from credit_commons.ledger import rfc6962
from credit_commons.ledger.audit import audit_log
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.models import CheckpointRow, LogEntryRow, LogStateRow
from credit_commons.ledger.tiles import TileHashSource
from credit_commons.runtime import Runtime

EVENTS = 100_000
KILLS = 8
pytestmark = pytest.mark.slow


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    env.update(
        COMMONS_DATA_DIR=str(settings.data_dir),
        COMMONS_DATABASE_URL=settings.resolved_database_url,
        COMMONS_LOG_BATCH_SIZE="100",
        COMMONS_LOG_CHECKPOINT_LEAVES="3000",
        COMMONS_LOG_LEVEL="ERROR",
    )
    return env


def log_size(runtime: Runtime) -> int:
    # A read-only unit of work: on SQLite it takes no write lock, so polling never makes the
    # worker wait (nor waits for it).
    with transaction(runtime.read_sessions) as session:
        return int(session.scalar(sa.select(LogStateRow.size)) or 0)


def wait_for_leaves(runtime: Runtime, process: subprocess.Popen[bytes], leaves: int) -> None:
    """Return once the log holds at least ``leaves`` leaves (the worker is running)."""
    while log_size(runtime) < leaves:
        assert process.poll() is None, "the worker ended before it was killed"
        time.sleep(0.02)  # a poll interval, not a bound: the condition decides


# A per-test guard against a hang, far above the run's length on a loaded machine; the run
# itself is bounded by KILLS and by the log's progress.
@pytest.mark.timeout(1800)
def test_sigkill_at_random_points_leaves_no_gap_or_duplicate(
    runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    actor = runtime.operator_actor()
    for start in range(0, EVENTS, 10_000):
        with transaction(runtime.sessions) as session:
            for i in range(start, start + 10_000):
                record_event(
                    session,
                    KeyRotated(key_name="k", version=i, key_type=KeyType.ED25519, kid=f"k{i}"),
                    actor=actor,
                    at=runtime.clock.now(),
                )
    rng = random.Random(20261122)
    command = [sys.executable, "-m", "credit_commons.cli", "worker"]
    start = log_size(runtime)
    for kill in range(KILLS):
        # Where this kill lands: during start-up (before any batch), or once the log holds
        # a leaf count drawn from this kill's stretch of the run (so in or between the
        # batches and checkpoints that follow, wherever the worker then is).
        stretch = (EVENTS - start) // (KILLS + 1)
        target = None if kill % 4 == 0 else start + stretch * kill + rng.randrange(1, stretch)
        with (tmp_path / f"worker-{kill}.log").open("wb") as log:
            process = subprocess.Popen(command, env=worker_env(settings), stderr=log)
            try:
                if target is not None:
                    wait_for_leaves(runtime, process, target)
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait()
        assert process.returncode == -signal.SIGKILL, (tmp_path / f"worker-{kill}.log").read_text()
    assert log_size(runtime) < EVENTS, "the kills must interrupt the run, not follow it"
    # A clean final pass: sequences the rest (the last stretch) and signs the final checkpoint.
    final = subprocess.run(
        [*command, "--once"], env=worker_env(settings), check=False, capture_output=True
    )
    assert final.returncode == 0, final.stderr.decode(errors="replace")

    with runtime.engine.connect() as connection:
        indexes = (
            connection.execute(sa.select(LogEntryRow.leaf_index).order_by(LogEntryRow.leaf_index))
            .scalars()
            .all()
        )
        logged = set(connection.execute(sa.select(LogEntryRow.event_id)).scalars())
        recorded = set(
            connection.execute(
                sa.select(EventRow.id).where(EventRow.type == "key.rotated")
            ).scalars()
        )
        extra = set(
            connection.execute(
                sa.select(EventRow.id).where(EventRow.type != "key.rotated")
            ).scalars()
        )
        pending = set(connection.execute(sa.select(LogOutboxRow.event_id)).scalars())
        checkpoints = connection.execute(
            sa.select(CheckpointRow.size, CheckpointRow.root).order_by(CheckpointRow.size)
        ).all()
    assert indexes == list(range(len(indexes)))  # no gap, no duplicate index
    # Every event is in the log exactly once (event_id is unique) or still pending — never
    # both, never neither; the worker's own last events (retention, anchoring) may be
    # pending, but every one of the run's events is logged.
    assert logged.isdisjoint(pending)
    assert logged | pending == recorded | extra
    assert recorded <= logged
    assert len(recorded) == EVENTS
    assert len(checkpoints) >= 2
    final_size, final_root = checkpoints[-1]
    assert final_size == len(indexes)
    with transaction(runtime.read_sessions) as session:
        source = TileHashSource(session)
        for size, root in checkpoints[:-1]:
            proof = rfc6962.consistency_proof(size, final_size, source)
            rfc6962.verify_consistency(
                size, final_size, proof, rfc6962.Hash(root), rfc6962.Hash(final_root)
            )
    vkey = log_identity(runtime).vkey
    assert audit_log(runtime.engine, vkey).checkpoints == len(checkpoints)
