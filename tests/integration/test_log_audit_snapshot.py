"""An audit reads one snapshot and never blocks writers (issue 13 item 5), on both databases.

Two moments of an audit are tried, each with a writer that records events, sequences them
and publishes checkpoints — the very tables the audit reads:

* while the audit streams the entries (its progress callback waits until the writer has
  made ``COMMITS`` commits): the writer must get through, so the audit holds no write lock;
* between the audit's first read and its scan of the entries: the audit must still pass,
  over the tree it saw first, so it reads one snapshot and not several.

Progress is asserted in counts (commits made while the audit was provably mid-run), never in
wall time; the waits only bound a deadlock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event

from credit_commons.core.db import transaction
from credit_commons.events import record_event
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.service import KeyRotated
from credit_commons.ledger.audit import AuditReport, audit_log
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime

LEAVES = 2_000
CHUNK = 250  # the audit reports progress eight times
COMMITS = 6
DEADLOCK = 60.0  # seconds: only a bound on a hang, never a measurement


def grow(runtime: Runtime, count: int, start: int = 0) -> None:
    with transaction(runtime.sessions) as session:
        for i in range(start, start + count):
            record_event(
                session,
                KeyRotated(key_name="k", version=i + 1, key_type=KeyType.ED25519, kid=f"k{i}"),
                actor=runtime.operator_actor(),
                at=runtime.clock.now(),
            )


@pytest.fixture
def logged(runtime: Runtime) -> Runtime:
    grow(runtime, LEAVES)
    LogWorker(runtime, steps=[]).run_once(force_checkpoint=True)
    return runtime


class Writer:
    """Makes ``COMMITS`` write transactions through the real write path, in its own thread:
    an event recorded, the log sequenced, a checkpoint signed (three commits a round)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.commits = 0
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._worker = LogWorker(runtime, steps=[])

    def run(self) -> None:
        try:
            for i in range(COMMITS):
                grow(self.runtime, 1, start=LEAVES + i)
                self.commits += 1
                # Sequencing and the checkpoint: writes to log_entries, log_tiles, log_state
                # and log_checkpoints, which the audit is reading.
                self._worker.run_once(force_checkpoint=True)
                self.commits += 1
        except BaseException as e:  # reported by the test, not lost in the thread
            self.error = e
        finally:
            self.done.set()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="writer", daemon=True)
        thread.start()
        return thread


def run_audit(runtime: Runtime, progress: Callable[[int], None]) -> AuditReport:
    return audit_log(runtime.engine, log_identity(runtime).vkey, progress, chunk=CHUNK)


def test_writers_commit_while_the_audit_streams(logged: Runtime) -> None:
    writer = Writer(logged)
    seen: list[int] = []
    during: list[int] = []

    def progress(done: int) -> None:
        seen.append(done)
        if len(seen) == 1:
            # The audit is mid-run: it has read a chunk and has more to read.  It waits
            # here, holding whatever it holds, until the writer is done (or hung).
            assert done < LEAVES
            writer.start()
            writer.done.wait(DEADLOCK)
            during.append(writer.commits)

    report = run_audit(logged, progress)
    assert writer.done.is_set()
    assert writer.error is None, f"the writer failed during the audit: {writer.error!r}"
    assert during == [2 * COMMITS], "every write committed while the audit was mid-run"
    # The audit saw the tree as it was when it began, and finished after the writes.
    assert report.size == LEAVES
    assert seen[0] < LEAVES
    assert seen[-1] == LEAVES
    # The log grew meanwhile and is whole.
    again = run_audit(logged, lambda _done: None)
    assert again.size == LEAVES + COMMITS


def test_the_audit_reads_one_snapshot(logged: Runtime) -> None:
    writer = Writer(logged)
    fired: list[int] = []

    def before_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The audit's scan of the entries: it has already read the checkpoints and the log
        # state.  A writer now adds leaves and checkpoints before the scan starts.
        if fired or "FROM log_entries ORDER BY" not in statement:
            return
        fired.append(1)
        thread = writer.start()
        thread.join(DEADLOCK)
        fired.append(writer.commits)

    event.listen(logged.engine, "before_cursor_execute", before_execute)
    try:
        report = run_audit(logged, lambda _done: None)
    finally:
        event.remove(logged.engine, "before_cursor_execute", before_execute)
    assert fired == [1, 2 * COMMITS]
    assert writer.error is None, f"the writer failed during the audit: {writer.error!r}"
    # The writes are not in the snapshot the audit began with.
    assert (report.size, report.checkpoints) == (LEAVES, 1)
    again = run_audit(logged, lambda _done: None)
    assert (again.size, again.checkpoints) == (LEAVES + COMMITS, 1 + COMMITS)
