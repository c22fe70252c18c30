"""Erasure epochs: erasure that reaches backups (issue 13 item 2; docs/operations.md).

Crypto-shredding deletes an erased subject's keys from the live database, but a backup made
before still holds them, wrapped by a master key the operator keeps.  So erasures close in
epochs.  Closing one:

1. marks the open epoch *closing*, with the master-key version every subject key moves to
   (the newest + 1) and the versions to destroy, and opens the next epoch — one transaction,
   under the epoch's row lock, which every erasure takes first: an erasure is in the epoch
   whose close began after it committed;
2. rotates the KMS to that version and records it in ``vault_state`` (every process reloads
   its KMS before it wraps a new key; on PostgreSQL the update waits for the transactions
   wrapping one right now, so step 3 sees their keys);
3. rewraps every subject key under an older version (resumable batches);
4. once none is left, retires and *destroys* the older versions in the KMS — the local key
   file loses their keys (``MasterKeyring.destroy``), a PKCS#11 token destroys the objects;
5. closes the epoch and records ``privacy.epoch_closed``.

Every step is idempotent and keeps its state in the database and the KMS, so a close killed
anywhere is completed by the next run.  Once an epoch is closed, every backup made before
the close holds only subject keys wrapped by destroyed versions: nothing of a subject erased
up to the close opens in it, with any key material that exists afterwards.

The worker closes a due epoch (``COMMONS_ERASURE_EPOCH`` seconds after it opened) in
time-bounded slices, so the log's own steps keep running; a due epoch without erasures is
renewed instead (nothing to make unreadable).  ``commons privacy close-epoch`` closes the
open epoch now, with progress output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.db import transaction
from credit_commons.core.errors import ConflictError
from credit_commons.events import EventDetails, record_event
from credit_commons.privacy.models import ErasureEpochRow
from credit_commons.runtime import Runtime
from credit_commons.vault import note_destroyed_below, note_kek_version

__all__ = [
    "EpochClosed",
    "EpochReport",
    "ErasureNote",
    "ScheduledEpoch",
    "close_epoch",
    "epoch_step",
    "list_epochs",
    "note_erasure",
]

State = Literal["open", "closing", "closed"]


class EpochClosed(EventDetails, event_type="privacy.epoch_closed"):
    """An erasure epoch closed: its erasures are unreadable in every earlier backup."""

    epoch: int
    erasures: int
    kek_version: int
    versions_destroyed: int
    subject_keys_rewrapped: int


@dataclass(frozen=True)
class EpochReport:
    """What a call of :func:`close_epoch` left: the epoch it worked on and its state
    (``dataclasses.asdict`` is its JSON)."""

    epoch: int
    state: State
    erasures: int
    opened_at: str
    kek_version: int | None
    rewrapped: int
    remaining: int
    destroyed_versions: list[int]
    closed_at: str | None


@dataclass(frozen=True)
class ScheduledEpoch(EpochReport):
    """An epoch as :func:`list_epochs` shows it: its report and when it is due to close."""

    due_at: str


@dataclass(frozen=True, slots=True)
class ErasureNote:
    """The epoch an erasure was counted in, and from when it reaches backups: when the
    epoch opened and when it is due to close (:func:`note_erasure`)."""

    epoch: int
    epoch_opened_at: str
    unreadable_in_backups_after: str


def _state(row: ErasureEpochRow) -> State:
    if row.closed_at is not None:
        return "closed"
    return "closing" if row.closing_at is not None else "open"


def _report(row: ErasureEpochRow, remaining: int = 0) -> EpochReport:
    return EpochReport(
        epoch=row.number,
        state=_state(row),
        erasures=row.erasures,
        opened_at=utc(row.opened_at).isoformat(),
        kek_version=row.kek_version,
        rewrapped=row.rewrapped,
        remaining=remaining,
        destroyed_versions=json.loads(row.destroyed_versions or "[]"),
        closed_at=utc(row.closed_at).isoformat() if row.closed_at is not None else None,
    )


def _locked(session: Session, number: int) -> ErasureEpochRow:
    return session.scalars(
        select(ErasureEpochRow)
        .where(ErasureEpochRow.number == number)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _newest(session: Session, rt: Runtime) -> ErasureEpochRow:
    # The open epoch, locked.  A close that committed while this waited for the lock has
    # opened the next one, which only a new statement sees (PostgreSQL READ COMMITTED).
    for _ in range(3):
        row = session.scalars(
            select(ErasureEpochRow)
            .order_by(ErasureEpochRow.number.desc())
            .limit(1)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if row is None:
            # A schema made without the migration: the first epoch opens now.
            row = ErasureEpochRow(number=1, opened_at=rt.clock.now(), erasures=0, rewrapped=0)
            try:
                with session.begin_nested():
                    session.add(row)
            except DbIntegrityError:
                continue
            return row
        if row.closing_at is None:
            return row
    raise ConflictError("erasure epochs changed during the request; retry")


def due_at(rt: Runtime, row: ErasureEpochRow) -> datetime:
    """When the epoch ``row`` is due to close."""
    return utc(row.opened_at) + timedelta(seconds=rt.settings.erasure_epoch)


def note_erasure(session: Session, rt: Runtime) -> ErasureNote:
    """Count an erasure in the open epoch, holding its row lock until the transaction ends
    (so no close begins before the erasure commits), and say from when it reaches backups:
    ``epoch``, ``epoch_opened_at`` and ``unreadable_in_backups_after`` (when the epoch is
    due to close).  Call it before the erasure changes anything.  Raises
    :class:`ConflictError` if epochs keep changing under it (retry).
    """
    row = _newest(session, rt)
    row.erasures += 1
    return ErasureNote(
        epoch=row.number,
        epoch_opened_at=utc(row.opened_at).isoformat(),
        unreadable_in_backups_after=due_at(rt, row).isoformat(),
    )


def list_epochs(session: Session, rt: Runtime, limit: int = 20) -> list[ScheduledEpoch]:
    """The newest ``limit`` epochs, newest first, each with its state and due time."""
    rows = session.scalars(
        select(ErasureEpochRow).order_by(ErasureEpochRow.number.desc()).limit(limit)
    ).all()
    return [
        ScheduledEpoch(**asdict(_report(row)), due_at=due_at(rt, row).isoformat()) for row in rows
    ]


# -- closing -----------------------------------------------------------------------------


def _begin(rt: Runtime, *, due_only: bool) -> int | EpochReport:
    # Step 1: the epoch being closed (an interrupted close first), or a report saying the
    # open epoch is not due (renewed when it had no erasures).
    with transaction(rt.sessions) as session:
        unfinished = session.scalars(
            select(ErasureEpochRow.number)
            .where(ErasureEpochRow.closing_at.is_not(None), ErasureEpochRow.closed_at.is_(None))
            .order_by(ErasureEpochRow.number)
            .limit(1)
        ).first()
        if unfinished is not None:
            return unfinished
        row = _newest(session, rt)
        now = rt.clock.now()
        if due_only:
            if due_at(rt, row) > now:
                return _report(row)
            if row.erasures == 0:
                row.opened_at = now  # nothing erased: nothing to make unreadable
                return _report(row)
        kms = rt.vault.kms
        kms.refresh()
        row.closing_at = now
        row.kek_version = kms.current_version() + 1
        # Every version held now is below the new one: all are destroyed at step 4.
        row.destroyed_versions = json.dumps(kms.versions())
        session.add(ErasureEpochRow(number=row.number + 1, opened_at=now, erasures=0, rewrapped=0))
        return row.number


def _rotate(rt: Runtime, number: int) -> int:
    # Step 2, under the epoch's row lock, so two closers never both rotate.
    kms = rt.vault.kms
    with transaction(rt.sessions) as session:
        row = _locked(session, number)
        target = int(row.kek_version or 0)
        kms.refresh()
        while kms.current_version() < target:
            kms.rotate()
        if kms.current_version() > target:  # someone rotated further: move to the newest
            target = row.kek_version = kms.current_version()
        note_kek_version(session, target)
    return target


def _finish(rt: Runtime, number: int, target: int) -> tuple[ErasureEpochRow, int]:
    # Steps 4 and 5: destroy only when no subject key is left below the target.
    kms = rt.vault.kms
    with transaction(rt.sessions) as session:
        row = _locked(session, number)
        left = rt.vault.keys_below(session, target)
        if left:
            return row, left
        doomed = set(json.loads(row.destroyed_versions or "[]"))
        doomed.update(v for v in kms.versions() if v < target)
        row.destroyed_versions = json.dumps(sorted(doomed))
        kms.destroy_versions_below(target)
        note_destroyed_below(session, target)
        now = rt.clock.now()
        row.closed_at = now
        record_event(
            session,
            EpochClosed(
                epoch=row.number,
                erasures=row.erasures,
                kek_version=target,
                versions_destroyed=len(doomed),
                subject_keys_rewrapped=row.rewrapped,
            ),
            actor=rt.operator_actor("erasure-epoch"),
            at=now,
        )
        return row, 0


def close_epoch(
    rt: Runtime,
    *,
    due_only: bool = False,
    batch: int = 1000,
    progress: Callable[[int, int], None] | None = None,
    deadline: float | None = None,
) -> EpochReport:
    """Close the open epoch (or finish a close that was interrupted) and report its state.

    With ``due_only`` (the worker) an epoch that is not yet due is left open.  With
    ``deadline`` (a ``time.monotonic()`` value) the rewrap stops after the batch that passes
    it and the report says ``closing``: the next call continues.  ``progress(done, total)``
    follows the rewrap.  Raises what the KMS and the database raise; whatever it raises,
    the next call completes the close.
    """
    begun = _begin(rt, due_only=due_only)
    if isinstance(begun, EpochReport):
        return begun
    number = begun
    target = _rotate(rt, number)

    def count(session: Session, n: int) -> None:
        # In the batch's own transaction: the count survives exactly what the batch did.
        row = session.get(ErasureEpochRow, number)
        if row is not None:
            row.rewrapped += n

    rewrap = rt.vault.rewrap(
        rt.sessions,
        batch=batch,
        progress=progress,
        target=target,
        deadline=deadline,
        on_batch=count,
    )
    if rewrap.remaining:
        with transaction(rt.read_sessions) as session:
            row = session.get(ErasureEpochRow, number)
            assert row is not None
            return _report(row, rewrap.remaining)
    row, left = _finish(rt, number, target)
    return _report(row, left)


def epoch_step(
    interval: float = 60.0, budget: float = 2.0, batch: int = 1000
) -> Callable[[Runtime, int], dict[str, object]]:
    """The worker's step: every ``interval`` seconds close the epoch if it is due, at most
    ``budget`` seconds of rewrap (in batches of ``batch`` keys) per pass; a close in
    progress continues at every pass."""
    last = [float("-inf")]
    busy = [False]

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        now = time.monotonic()
        if not busy[0] and now - last[0] < interval:
            return {}
        last[0] = now
        report = close_epoch(rt, due_only=True, batch=batch, deadline=now + budget)
        busy[0] = report.state == "closing"
        if report.state == "open":
            return {}
        return {"erasure_epoch": report.epoch, "erasure_epoch_state": report.state}

    return step
