"""Tables of the lender registry: registered lender clients, the client-assertion ids they
used and the console tokens their staff sign in to the web console with.  Other domains
reach them through :mod:`credit_commons.lenders` only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["ClientAssertionRow", "ConsoleTokenRow", "LenderClientRow"]


class LenderClientRow(Base):
    """A lender registered as an OAuth 2.0 client (``private_key_jwt``, RFC 7523).

    ``jwks`` holds public keys only (a JSON JWK Set); ``allowed_purposes`` a JSON list of
    purpose codes the lender may ask consent for; ``certificate_thumbprint`` the RFC 8705
    ``x5t#S256`` of the TLS client certificate its tokens are bound to, if it registered one.
    """

    __tablename__ = "lender_clients"

    client_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    jwks: Mapped[str] = mapped_column(Text)
    allowed_purposes: Mapped[str] = mapped_column(Text)
    webhook_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    certificate_thumbprint: Mapped[str | None] = mapped_column(String(43), nullable=True)


class ClientAssertionRow(Base):
    """A client assertion's ``jti`` that was used (RFC 7523 §3 item 7), stored hash-only.

    The primary key makes a replay fail on insert, atomically, on both backends.  Rows are
    kept until the assertion itself would have expired, then purged.
    """

    __tablename__ = "client_assertions"

    jti_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_client_assertions_expires_at", "expires_at"),)


class ConsoleTokenRow(Base):
    """A lender console token (``lenders/console.py``): bound to one client, stored as the
    SHA-256 of its secret only, expiring, revocable (``revoked_at``)."""

    __tablename__ = "lender_console_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_lender_console_tokens_client", "client_id"),)
