"""Tables of the privacy domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["DsrRequestRow", "PlatformFactRow"]


class PlatformFactRow(Base):
    """A fact the platform checks at every start, e.g. the fingerprint of a pepper."""

    __tablename__ = "platform_facts"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DsrRequestRow(Base):
    """A data-subject request (export or erasure): opened, confirmed, then fulfilled once.

    The token that fulfils it is stored as its SHA-256 only and lives minutes.
    """

    __tablename__ = "dsr_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    identity_token: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    challenge: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
