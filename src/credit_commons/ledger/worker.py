"""The log worker: sequences events, publishes checkpoints, gathers cosignatures, anchors.

One loop, run inside ``commons serve`` (embedded default) or alone as ``commons worker``
(production, one per deployment).  Each step is its own transaction, so a crash loses at
most the step in flight and the next run picks up where the log is.  A checkpoint is
published when at least ``COMMONS_LOG_CHECKPOINT_LEAVES`` new leaves are sequenced, or
when ``COMMONS_LOG_CHECKPOINT_INTERVAL`` seconds have passed and the tree grew.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError
from credit_commons.core.tracing import span, tracer
from credit_commons.ledger import service
from credit_commons.ledger.continuity import ContinuityGuard, Gap, LogDiverged
from credit_commons.ledger.identity import LogIdentity, log_identity
from credit_commons.ledger.restore_mode import RestoreHold, restore_hold
from credit_commons.ledger.sequencer import sequence_pending
from credit_commons.ledger.steps import default_probes, log_steps
from credit_commons.runtime import Runtime

__all__ = ["LogWorker", "StepReport", "step_name"]

log = logging.getLogger("credit_commons.ledger.worker")
_tracer = tracer("credit_commons.worker")

Step = Callable[[Runtime, int], dict[str, object]]


@dataclass
class StepReport:
    """What one pass of the worker did."""

    sequenced: int = 0
    size: int = 0
    checkpoint: int | None = None
    backlog: bool = False
    diverged: Gap | None = None
    held: RestoreHold | None = None
    extra: dict[str, object] = field(default_factory=dict)


def step_name(step: Step) -> str:
    """A step's name for traces: the function that made it (``consent_step`` for the
    closure ``consent_step.<locals>.step``), else its own."""
    qualname = getattr(step, "__qualname__", None) or type(step).__name__
    return qualname.split(".<locals>", 1)[0].rsplit(".", 1)[-1]


class LogWorker:
    """Runs the log's background steps; extra steps (witnesses, anchors) plug in."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        steps: list[Step] | None = None,
        probes: list[Step] | None = None,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        """``steps`` default to those the settings ask for (witnesses, anchors); ``probes``
        run once, before the first pass compares the database with what was published
        (default: ask each configured witness its size).  ``ready`` (a server's schema
        gate, core/migrate.py) says whether the database is migrated: until it does,
        :meth:`run_forever` waits instead of running passes."""
        self.runtime = runtime
        self.ready = ready
        self.steps = log_steps(runtime) if steps is None else steps
        self.probes = default_probes(runtime) if probes is None else probes
        self._probed = False
        self.guard = ContinuityGuard(runtime.settings)
        self._last_checkpoint_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, *, force_checkpoint: bool = False) -> StepReport:
        """One pass (see :meth:`_pass`), a trace of its own when tracing is on: a
        ``worker pass`` span over ``worker sequence`` and one ``worker <step>`` span per
        step."""
        with span(_tracer, "worker pass"):
            return self._pass(force_checkpoint=force_checkpoint)

    def _pass(self, *, force_checkpoint: bool) -> StepReport:
        """Sequence what is pending and publish a checkpoint when it is due.

        Neither happens while the database's tree does not continue what the log published
        (a restored backup, ledger/continuity.py): the report's ``diverged`` names the gap,
        recorded events wait in the outbox, and the other steps still run.  Nor while the
        database is held in backup-restore mode (ledger/restore_mode.py; the report's
        ``held``), so the checkpoint served stays the backup's until the operator confirms;
        while held, neither the probes nor the other steps run either (each writes or sends).
        """
        rt = self.runtime
        cache = rt.tile_cache
        # Established (if need be) in its own transaction, before the others take snapshots.
        identity = log_identity(rt)
        with transaction(rt.read_sessions) as session:
            held = restore_hold(session)
        # Held: no probe and no step runs (each writes or sends: retention deletes, consent
        # expiry, webhooks from the restored outbox, credentials, witnesses, anchors); the
        # probes wait for the first pass after the confirmation.
        if held is None and not self._probed:
            self._probed = True
            for probe in self.probes:
                probe(rt, 0)
        with transaction(rt.read_sessions) as session:
            continuity = self.guard.assess(session, identity, cache)
            held = restore_hold(session)
        report = StepReport(size=continuity.database_size, held=held)
        if continuity.gap is None and held is None:
            with span(_tracer, "worker sequence"):
                self._advance(report, identity, force_checkpoint)
        else:
            report.diverged = continuity.gap
            with transaction(rt.read_sessions) as session:
                latest = service.latest_checkpoint(session)
            report.checkpoint = latest.size if latest is not None else None
        if held is None:
            for step in self.steps:
                name = step_name(step)
                with span(_tracer, f"worker {name}", attributes={"commons.step": name}):
                    report.extra.update(step(rt, report.checkpoint or 0))
        return report

    def _advance(self, report: StepReport, identity: LogIdentity, force_checkpoint: bool) -> None:
        rt = self.runtime
        settings = rt.settings
        cache = rt.tile_cache
        # At most one checkpoint's worth of leaves per pass, so a backlog is checkpointed
        # every COMMONS_LOG_CHECKPOINT_LEAVES leaves rather than only at its end.
        result = sequence_pending(
            rt.sessions,
            limit=settings.log_batch_size,
            cache=cache,
            max_total=settings.log_checkpoint_leaves,
        )
        report.sequenced, report.size = result.appended, result.size
        report.backlog = result.appended >= settings.log_checkpoint_leaves
        with transaction(rt.sessions) as session:
            latest = service.latest_checkpoint(session)
            covered = latest.size if latest else 0
            grown = result.size - covered
            due = time.monotonic() - self._last_checkpoint_at >= settings.log_checkpoint_interval
            if grown > 0 and (force_checkpoint or due or grown >= settings.log_checkpoint_leaves):
                published = service.publish_checkpoint(
                    session, rt.key_store, rt.clock, identity, guard=self.guard, cache=cache
                )
                report.checkpoint = published.row.size
                self._last_checkpoint_at = time.monotonic()
            elif latest is not None:
                report.checkpoint = latest.size

    def run_forever(self, poll: float = 0.5) -> None:
        """Run passes until :meth:`stop`; errors are logged and the loop goes on.

        A divergence (see :meth:`run_once`) is logged as an error once each time it
        changes, with the gap's fields, not at every pass.  While ``ready`` says the
        database is not migrated, the loop waits: one warning, then a quiet re-check
        every ``poll`` seconds (the gate bounds how often it reads the database).
        """
        reported: tuple[object, ...] | None = None
        held_reported: str | None = None
        waiting = False
        while not self._stop.is_set():
            backlog = False
            try:
                if self.ready is not None and not self.ready():
                    if not waiting:
                        log.warning(
                            "database not migrated: the log worker waits for `commons db upgrade`",
                            extra={"fields": {"code": "service.not_migrated"}},
                        )
                    waiting = True
                    self._stop.wait(poll)
                    continue
                if waiting:
                    log.info("database migrated: the log worker starts")
                    waiting = False
                report = self.run_once()
                backlog = report.backlog
                gap = report.diverged
                # The gap itself, not the count of writes waiting (it grows with each write).
                seen = None if gap is None else (gap.kind, gap.claim, gap.database_size)
                if gap is not None and seen != reported:
                    log.error(
                        "log diverged: refusing to sequence and sign",
                        extra={"fields": {"code": LogDiverged.code, **gap.to_json()}},
                    )
                reported = seen
                held = None if report.held is None else report.held.backup_id
                if held is not None and held != held_reported:
                    log.warning(
                        "backup-restore mode: no sequencing, signing or steps until confirmed",
                        extra={"fields": {"backup_id": held}},
                    )
                held_reported = held
                if report.sequenced:
                    log.info(
                        "log advanced",
                        extra={"fields": {"sequenced": report.sequenced, "size": report.size}},
                    )
            except CommonsError as e:
                log.error("log worker step failed", extra={"fields": {"code": e.code}})
            except Exception as e:  # keep the loop alive; the next pass retries
                log.error("log worker step failed", exc_info=e)
            if not backlog:
                self._stop.wait(poll)

    def start(self) -> None:
        """Run :meth:`run_forever` in a daemon thread."""
        self._thread = threading.Thread(target=self.run_forever, name="log-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and wait for the current pass to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
