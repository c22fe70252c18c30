"""Tables of the privacy domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["PlatformFactRow"]


class PlatformFactRow(Base):
    """A fact the platform checks at every start, e.g. the fingerprint of a pepper."""

    __tablename__ = "platform_facts"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
