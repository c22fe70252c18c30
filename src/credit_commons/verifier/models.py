"""Tables of the verifier domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["TrustedIssuerRow"]


class TrustedIssuerRow(Base):
    """An issuer whose credentials verification accepts: an https issuer URL (keys from its
    ``/.well-known/jwt-vc-issuer`` metadata), a ``did:web`` or a ``did:key``."""

    __tablename__ = "trusted_issuers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(512), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
