"""Tables of the event spine: every recorded event, and the outbox the log sequences from.

Both are written in the caller's transaction by :func:`credit_commons.events.record_event`;
the transparency log (:mod:`credit_commons.ledger`) reads the outbox and turns each entry
into a Merkle leaf.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["EventRow", "LogOutboxRow"]


class EventRow(Base):
    """One recorded event.  ``actor``/``subject`` are pseudonyms, ``object`` is a hash.

    ``details`` is the RFC 8785 canonical JSON of the event's typed details model.
    """

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(64))
    object: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("ix_events_type_at", "type", "at"),
        Index("ix_events_subject_id", "subject", "id"),
    )


class LogOutboxRow(Base):
    """An event waiting to be sequenced into the log; written with the event itself.

    ``entry`` is the log entry (the canonical JSON event reference), fixed at record time.
    """

    __tablename__ = "log_outbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
