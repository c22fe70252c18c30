"""Tables of the web console: its server-side sessions.

A session row is found by the SHA-256 of the random id in the visitor's cookie; the id
itself is never stored, so a copy of the table signs nobody in.  A session made with a
platform token keeps the token's SHA-256 (``token_hash``, never the token), so that each
request checks the token is still valid (``web/sessions.py``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["WebSessionRow"]


class WebSessionRow(Base):
    """A signed-in console session: who (``role``, ``subject``, ``display_name``), when
    (created, last seen, absolute expiry), the CSRF secret of its forms and, when it was
    made with a platform token, that token's SHA-256."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200))
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    token_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    # The issuer desk's transaction code of the offer just made, until its page shows it
    # once (web/issuer_offers.py; migration 0036): on the server, never in a cookie.
    offer_id: Mapped[str | None] = mapped_column(String(40), default=None)
    offer_tx_code: Mapped[str | None] = mapped_column(String(16), default=None)
    offer_tx_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (
        Index("ix_web_sessions_subject", "subject"),
        Index("ix_web_sessions_expires_at", "expires_at"),
    )
