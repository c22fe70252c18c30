"""Tables of the privacy domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

# The platform's facts table lives in core (the log's identity is recorded there too); it is
# re-exported here, where the pepper fingerprints first used it.
from credit_commons.core.facts import PlatformFactRow

__all__ = ["DsrRequestRow", "ErasureEpochRow", "PlatformFactRow"]


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


class ErasureEpochRow(Base):
    """An erasure epoch (docs/operations.md): erasures made while it is open become
    unreadable in every backup once it is closed.

    The newest row is the open epoch; it is due ``COMMONS_ERASURE_EPOCH`` seconds after
    ``opened_at``.  Closing it records the master-key version every subject key moves to
    (``kek_version``) and the versions to destroy, and opens the next epoch, in one
    transaction (``closing_at``); the close then rotates, rewraps and destroys, each step
    resumable, and ends with ``closed_at``.
    """

    __tablename__ = "erasure_epochs"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    erasures: Mapped[int] = mapped_column(Integer)
    closing_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kek_version: Mapped[int | None] = mapped_column(Integer)
    rewrapped: Mapped[int] = mapped_column(Integer)
    destroyed_versions: Mapped[str | None] = mapped_column(String(255))  # JSON list
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
