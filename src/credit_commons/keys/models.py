"""Tables of the keys domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["SigningKeyRow"]


class SigningKeyRow(Base):
    """One version of a named signing key.  Every version verifies; the newest signs.

    ``private_blob`` is the private key wrapped under the master key (``mk1.…``) for the
    embedded backend, or a reference to the key inside an HSM for other backends.
    """

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    key_type: Mapped[str] = mapped_column(String(16))
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_jwk: Mapped[str] = mapped_column(Text)
    backend: Mapped[str] = mapped_column(String(16))
    private_blob: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("name", "version", name="uq_signing_keys_name_version"),)
