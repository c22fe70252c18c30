"""Tables of the ledger domain: the event spine."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["EventRow"]


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
        Index("ix_events_subject", "subject"),
    )
