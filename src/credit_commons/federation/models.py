"""Tables of the federation domain: each publisher's cursor (migration 0042)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["FederationCursorRow"]


class FederationCursorRow(Base):
    """How far publisher ``name`` got: the next leaf index (``spine``) or the last checkpoint
    size (``checkpoints``) whose messages JetStream acknowledged.  Written only after the
    acknowledgements, so a crash before it republishes (and JetStream deduplicates)."""

    __tablename__ = "federation_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
