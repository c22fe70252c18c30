"""Kill the sequencer (SIGKILL) at random points during a 100k-event run, on both databases.

After every restart the log must hold exactly the recorded events — no gap, no duplicate —
and every checkpoint signed along the way must be consistent with the final tree.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.service import KeyRotated
from credit_commons.ledger import rfc6962
from credit_commons.ledger.audit import audit_log
from credit_commons.ledger.events import record_event
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.models import CheckpointRow, EventRow, LogEntryRow, LogOutboxRow
from credit_commons.ledger.tiles import TileHashSource
from credit_commons.runtime import Runtime

EVENTS = 100_000
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


def test_sigkill_at_random_points_leaves_no_gap_or_duplicate(
    runtime: Runtime, settings: Settings
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
    kills = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        with runtime.engine.connect() as connection:
            # The run's own events still waiting (the worker adds events of its own).
            pending = connection.scalar(
                sa.select(sa.func.count())
                .select_from(LogOutboxRow)
                .join(EventRow, EventRow.id == LogOutboxRow.event_id)
                .where(EventRow.type == "key.rotated")
            )
        if pending == 0:
            break
        process = subprocess.Popen(command, env=worker_env(settings), stderr=subprocess.DEVNULL)
        time.sleep(
            rng.uniform(0.3, 2.5)
        )  # start-up takes ~0.5 s; kill before, during or after batches
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
    assert kills >= 3, "the run finished before the sequencer could be killed three times"
    # A clean final pass: sequences any rest and signs the final checkpoint.
    subprocess.run(
        [*command, "--once"], env=worker_env(settings), check=True, stderr=subprocess.DEVNULL
    )

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
