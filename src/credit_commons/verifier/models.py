"""Tables of the verifier domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["TrustedIssuerRow", "VpTransactionRow"]


class TrustedIssuerRow(Base):
    """An issuer whose credentials verification accepts: an https issuer URL (keys from its
    ``/.well-known/jwt-vc-issuer`` metadata), a ``did:web`` or a ``did:key``."""

    __tablename__ = "trusted_issuers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(512), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VpTransactionRow(Base):
    """An OpenID4VP authorization request and what became of it (docs/verifier.md).

    ``nonce`` is one-time: step 1 of the pipeline consumes it with a conditional UPDATE
    (``consumed_at``).  ``request_hash`` is the SHA-256 of the canonical request, checked
    again at the response.  ``enc_key`` is the ephemeral private key of a ``direct_post.jwt``
    transaction, wrapped by the vault's KMS (never stored or logged in clear);
    ``response_code_hash`` the SHA-256 of the one-time response code; ``claims`` the
    disclosed claims, wrapped, until the verifier has read them once.
    """

    __tablename__ = "vp_transactions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    client_id: Mapped[str] = mapped_column(String(512))
    client_id_prefix: Mapped[str] = mapped_column(String(32))
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(64), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    dcql: Mapped[str] = mapped_column(Text)
    policy_id: Mapped[str | None] = mapped_column(String(40))
    policy_version: Mapped[int | None] = mapped_column(Integer)
    zk_predicates: Mapped[str] = mapped_column(Text)
    response_mode: Mapped[str] = mapped_column(String(16))
    redirect_uri: Mapped[str | None] = mapped_column(String(1024))
    enc_public: Mapped[str | None] = mapped_column(Text)
    enc_key: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision: Mapped[str | None] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(String(40))
    response_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    claims: Mapped[str | None] = mapped_column(Text)
    claims_read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
