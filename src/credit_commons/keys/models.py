"""Tables of the keys domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["RegisteredServiceKeyRow", "SigningKeyRow"]


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


class RegisteredServiceKeyRow(Base):
    """One version of the public key of a service instance outside the platform's processes
    (a full node, a committee member): it signs its own service tokens, and the platform
    holds only this public key.  The newest version signs; an older one verifies for the
    overlap window after its successor's ``created_at`` (keys/service_tokens.py)."""

    __tablename__ = "registered_service_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint(
            "service", "name", "version", name="uq_registered_service_keys_service_name_version"
        ),
    )
