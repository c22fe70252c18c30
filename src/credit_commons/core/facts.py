"""Platform facts: values fixed when an instance first needs them, checked ever after.

A fact (the log's origin and key, a pepper's fingerprint) is recorded once, by whichever
process needs it first, and never rewritten: a later start that would derive another value
from its settings must use the recorded one or refuse.  Two processes starting together
both try to insert; the database's primary key lets one win and the other reads the winner.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from credit_commons.core.db import Base

__all__ = ["PlatformFactRow", "get_fact", "record_fact"]

MAX_VALUE_LENGTH = 255


class PlatformFactRow(Base):
    """A fact the platform checks at every start, e.g. the fingerprint of a pepper."""

    __tablename__ = "platform_facts"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(MAX_VALUE_LENGTH))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def get_fact(session: Session, key: str) -> str | None:
    """The recorded value of ``key``, or None before it is recorded."""
    row = session.get(PlatformFactRow, key)
    return None if row is None else row.value


def record_fact(session: Session, key: str, value: str, now: datetime) -> str:
    """Record ``value`` under ``key`` unless a value is already recorded; return the recorded
    value (``value`` itself, or the one recorded first — by this or a concurrent process).

    Raises ``ValueError`` for a value longer than the column holds (a programming error:
    callers bound their values).
    """
    if len(value) > MAX_VALUE_LENGTH:
        raise ValueError(f"fact {key!r} is longer than {MAX_VALUE_LENGTH} characters")
    existing = get_fact(session, key)
    if existing is not None:
        return existing
    try:
        # A savepoint: losing the race must not roll back the caller's transaction.
        with session.begin_nested():
            session.add(PlatformFactRow(key=key, value=value, recorded_at=now))
    except IntegrityError:
        session.expire_all()
        winner = get_fact(session, key)
        if winner is None:  # pragma: no cover - the conflicting row cannot vanish
            raise
        return winner
    return value
