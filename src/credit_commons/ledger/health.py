"""The log's health in a few bounded reads, for ``/metrics`` (docs/operations.md
"Monitoring and alerts"): its size, the newest checkpoint and its age, how far each witness
and each anchor backend is behind it, and the events waiting to be sequenced."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.events import LogOutboxRow
from credit_commons.ledger.models import (
    AnchorJobRow,
    CheckpointRow,
    LogStateRow,
    WitnessProgressRow,
)

__all__ = ["LogHealth", "log_health"]

_ANCHORED = ("PUBLISHED", "VERIFIED")


@dataclass(frozen=True)
class LogHealth:
    """What the log has, and how far behind what follows it is."""

    size: int
    checkpoint_size: int
    checkpoint_at: datetime | None
    outbox: int  # events recorded and not sequenced yet, counted up to the cap
    witnesses: dict[str, int]  # witness name -> the size it last cosigned
    anchors: dict[str, int]  # backend -> the largest size it published


def log_health(
    session: Session, *, witnesses: list[str], backends: list[str], cap: int
) -> LogHealth:
    """The log's health; ``witnesses`` and ``backends`` (the configured ones) each get an
    entry, 0 for one that has done nothing yet.  Each read is bounded: one row by key, the
    newest checkpoint by its primary key, at most ``cap`` outbox rows, one row per witness
    and one per backend."""
    state = session.get(LogStateRow, 1)
    newest = session.scalars(
        select(CheckpointRow).order_by(CheckpointRow.size.desc()).limit(1)
    ).first()
    waiting = select(LogOutboxRow.id).limit(cap).subquery()
    outbox = int(session.scalar(select(func.count()).select_from(waiting)) or 0)
    progress = {
        row.witness: int(row.size)
        for row in session.scalars(
            select(WitnessProgressRow).where(WitnessProgressRow.witness.in_(witnesses))
        )
    }
    anchors = {
        backend: int(
            session.scalar(
                select(func.max(AnchorJobRow.size)).where(
                    AnchorJobRow.backend == backend, AnchorJobRow.status.in_(_ANCHORED)
                )
            )
            or 0
        )
        for backend in backends
    }
    return LogHealth(
        size=int(state.size) if state is not None else 0,
        checkpoint_size=int(newest.size) if newest is not None else 0,
        checkpoint_at=utc(newest.created_at) if newest is not None else None,
        outbox=outbox,
        witnesses={w: progress.get(w, 0) for w in witnesses},
        anchors=anchors,
    )
