"""Tables of the federation domain: each publisher's cursor (migration 0042) and the streams
it refuses to publish to (migration 0057)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["FederationCursorRow", "FederationRefusalRow"]


class FederationCursorRow(Base):
    """How far publisher ``name`` got: the next leaf index (``spine``) or the last checkpoint
    size (``checkpoints``) whose messages JetStream acknowledged.  Written only after the
    acknowledgements, so a crash before it republishes (and JetStream deduplicates)."""

    __tablename__ = "federation_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FederationRefusalRow(Base):
    """A stream the publisher found holding another platform's messages when it last
    connected (``federation/ownership.py``), so it published nothing: what the stream holds
    (``other``, as the message names it) and the position the message names.  Written by
    the publisher that refused, removed when it connects to streams that are all its own;
    ``/metrics`` reads it (``commons_federation_refused``)."""

    __tablename__ = "federation_refusals"

    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    other: Mapped[str] = mapped_column(String(256))
    position: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
