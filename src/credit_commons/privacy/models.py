"""Tables of the privacy domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

# The platform's facts table lives in core (the log's identity is recorded there too); it is
# re-exported here, where the pepper fingerprints first used it.
from credit_commons.core.facts import PlatformFactRow

__all__ = ["DsrRequestRow", "PlatformFactRow"]


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
