"""Tables of the verifier domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = [
    "PolicyFloorRow",
    "PolicyVersionRow",
    "TrustBundleVersionRow",
    "TrustPinRow",
    "TrustedIssuerRow",
    "VpTransactionRow",
]


class TrustedIssuerRow(Base):
    """An issuer whose credentials verification accepts: an https issuer URL (keys from its
    ``/.well-known/jwt-vc-issuer`` metadata), a ``did:web``, a ``did:key``, or an X.509 trust
    anchor (``kind`` ``x509``, ``issuer`` its ``x509:sha256:…`` id, ``anchor`` its DER).
    ``marks`` and ``types`` are JSON arrays (``["*"]``: any type).  The signed trust bundle
    is made from these rows."""

    __tablename__ = "trusted_issuers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(512), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    marks: Mapped[str] = mapped_column(Text, default="[]")
    types: Mapped[str] = mapped_column(Text, default='["*"]')
    anchor: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class VpTransactionRow(Base):
    """An OpenID4VP authorization request and what became of it (docs/verifier.md).

    ``nonce`` is one-time: step 1 of the pipeline consumes it with a conditional UPDATE
    (``consumed_at``).  ``request_hash`` is the SHA-256 of the canonical request, checked
    again at the response.  ``enc_key`` is the ephemeral private key of a ``direct_post.jwt``
    transaction, wrapped by the vault's KMS (never stored or logged in clear);
    ``response_code_hash`` the SHA-256 of the one-time response code; ``claims`` the
    disclosed claims, wrapped, until the verifier has read them once (only when the response
    went back with a response code, that is with a ``redirect_uri``).  ``client_name`` is the
    lender's name the request carries; ``discarded`` the presentations the pipeline
    discarded (JSON: query id and reason of each).
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
    policy_owner: Mapped[str | None] = mapped_column(String(64))
    policy_id: Mapped[str | None] = mapped_column(String(64))
    policy_version: Mapped[int | None] = mapped_column(Integer)
    purpose: Mapped[str | None] = mapped_column(String(64))
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
    client_name: Mapped[str | None] = mapped_column(String(200))
    discarded: Mapped[str | None] = mapped_column(Text)


class TrustBundleVersionRow(Base):
    """One version of the platform's trust bundle: the entries (canonical JSON, as the
    bundle's ``issuers`` member) as they stood after the change that made it."""

    __tablename__ = "trust_bundle_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    issuers: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TrustPinRow(Base):
    """Another platform's trust bundle this verifier trusts: where it is fetched, the key
    pinned for it (a public JWK), and the last bundle accepted (its version is the floor
    below which a fetched bundle is a rollback)."""

    __tablename__ = "trust_pins"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(String(512), unique=True)
    key_jwk: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0)
    token: Mapped[str | None] = mapped_column(Text, nullable=True)
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    pinned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PolicyVersionRow(Base):
    """One version of a verifier's policy: the verifier (``owner``: a lender's client id or
    ``platform``), the policy id and version, its JSON document and compliance profile."""

    __tablename__ = "verifier_policies"
    __table_args__ = (UniqueConstraint("owner", "policy_id", "version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    policy_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    profile: Mapped[str] = mapped_column(String(32))
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PolicyFloorRow(Base):
    """The version floor of a verifier's policy: requests made under an older version are
    denied (``policy_version_downgrade``)."""

    __tablename__ = "verifier_policy_floors"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    floor: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
