"""Counts of refusals that name no existing consent or borrower (issue 12 item 7).

A refused call without a valid token, or naming a consent that does not exist, is about
nobody's data: recording each as a permanent ``access.denied`` event would let anyone grow
the transparency log without bound (1,200 a minute per address at the default rate limit).
Such refusals are counted instead — one row per (hour, operation, reason, actor),
incremented by an upsert — next to a Prometheus counter (``consent.access``).  The table is
bounded by construction: operations are route names and reasons error codes, both fixed
sets in the code; the actor is a registered lender (when its own signature verified) or
``anonymous``, never something a stranger chooses; and retention (``privacy/retention.py``)
drops hours older than ``COMMONS_RETENTION_DENIAL_COUNTS_DAYS``.  Operators read it with
``GET /v1/admin/access-denials`` or ``commons consent denials``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from credit_commons.consent.models import AccessDenialCountRow
from credit_commons.consent.schemas import DenialCount
from credit_commons.core.clock import utc
from credit_commons.core.db import transaction
from credit_commons.core.errors import NotFoundError
from credit_commons.identity import Principal
from credit_commons.runtime import Runtime

__all__ = ["bucket_of", "count_denial", "denial_counts", "prune_denial_counts"]

_TABLE = cast("Table", AccessDenialCountRow.__table__)


def bucket_of(at: datetime) -> datetime:
    """The hour ``at`` is counted in (UTC, minutes and below cleared)."""
    return utc(at).replace(minute=0, second=0, microsecond=0)


def count_denial(rt: Runtime, *, operation: str, reason: str, actor: str) -> None:
    """Add one to the current hour's count of (``operation``, ``reason``, ``actor``), in a
    unit of work of its own (the refused request's has rolled back).  Raises what the
    database raises."""
    values = {
        "bucket": bucket_of(rt.clock.now()),
        "operation": operation[:128],
        "reason": reason[:128],
        "actor": actor[:64],
        "count": 1,
    }
    with transaction(rt.sessions) as session:
        # INSERT … ON CONFLICT DO UPDATE: atomic on both backends, so concurrent refusals
        # of the same kind add up instead of racing to insert the same key.
        dialect = session.connection().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(_TABLE).values(**values)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["bucket", "operation", "reason", "actor"],
                set_={"count": _TABLE.c.count + 1},
            )
        )


def denial_counts(
    session: Session, rt: Runtime, principal: Principal, *, hours: int = 24
) -> list[DenialCount]:
    """The counts of the last ``hours`` hours, newest hour first (operators only).

    Raises :class:`NotFoundError` for anyone but an administrator (the route's existence
    is not revealed to others).
    """
    if not principal.is_admin:
        raise NotFoundError("no such resource")
    since = bucket_of(rt.clock.now() - timedelta(hours=hours))
    rows = session.scalars(
        select(AccessDenialCountRow)
        .where(AccessDenialCountRow.bucket >= since)
        .order_by(
            AccessDenialCountRow.bucket.desc(),
            AccessDenialCountRow.operation,
            AccessDenialCountRow.reason,
            AccessDenialCountRow.actor,
        )
    )
    return [
        DenialCount(
            hour=utc(r.bucket).isoformat(),
            operation=r.operation,
            reason=r.reason,
            actor=r.actor,
            count=r.count,
        )
        for r in rows
    ]


def prune_denial_counts(session: Session, before: datetime) -> int:
    """Delete the counts of hours before ``before``; returns how many rows went."""
    result = session.execute(
        delete(AccessDenialCountRow).where(AccessDenialCountRow.bucket < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)
