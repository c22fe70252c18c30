"""Tables of the identity domain.  Nothing personal is stored in clear: profile and
attributes are sealed by the vault; identifiers exist only as keyed pseudonyms."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = [
    "BOUND",
    "UNVERIFIED",
    "AccessTokenRow",
    "DelegationRow",
    "IdentifierLinkRow",
    "IdentityRow",
    "OnboardingAuthorityRow",
    "TombstoneRow",
]

UNVERIFIED = "unverified"
"""A self-asserted identifier: stored, blocks nobody, used where uniqueness does not matter."""
BOUND = "bound"
"""An identifier an onboarding authority attested: unique among bound identifiers."""


class IdentityRow(Base):
    """An identity (person or enterprise) behind an opaque token ``idt_…``."""

    __tablename__ = "identities"

    token: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    roles: Mapped[str] = mapped_column(Text)  # JSON list of role names
    verification_level: Mapped[str] = mapped_column(String(32))
    owner_token: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("identities.token", ondelete="SET NULL")
    )
    profile_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    attributes_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdentifierLinkRow(Base):
    """An identifier (Aadhaar, PAN, GSTIN, Udyam, mobile) of an identity, as a keyed pseudonym.

    ``status`` is :data:`UNVERIFIED` when the identity asserted it itself: many identities
    may hold the same unverified identifier, so registering someone else's number locks
    nobody out.  It is :data:`BOUND` once an onboarding authority attested it
    (``authority_id``, ``evidence_digest`` — a keyed digest of the authority's evidence
    reference, never the reference itself — and ``bound_at``); the partial unique index
    makes a bound identifier belong to one identity, on SQLite and PostgreSQL alike.
    """

    __tablename__ = "identity_identifiers"

    identity_token: Mapped[str] = mapped_column(
        String(40), ForeignKey("identities.token", ondelete="CASCADE"), primary_key=True
    )
    pseudonym: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    authority_id: Mapped[str | None] = mapped_column(String(40))
    evidence_digest: Mapped[str | None] = mapped_column(String(64))
    bound_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_identity_identifiers_pseudonym", "pseudonym"),
        Index(
            "uq_identity_identifiers_bound",
            "pseudonym",
            unique=True,
            sqlite_where=text("status = 'bound'"),
            postgresql_where=text("status = 'bound'"),
        ),
    )


class OnboardingAuthorityRow(Base):
    """Who may bind identifiers (seed 001's bank-verified onboarding).

    ``kind`` is ``bank`` (a registered lender client, ``principal`` ``lender:lnd_…``, which
    authenticates with its OAuth access token) or ``issuer_desk`` (a desk with bearer tokens
    of its own, ``principal`` ``authority:oba_…``).  Only an administrator designates one.
    """

    __tablename__ = "onboarding_authorities"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    principal: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AccessTokenRow(Base):
    """A bearer token, stored as its SHA-256 only."""

    __tablename__ = "access_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    principal: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_access_tokens_principal", "principal"),)


class TombstoneRow(Base):
    """A keyed hash that blocks re-creating an erased identity or identifier.

    Keyed in its own domain (``tombstone``), so it matches no pseudonym stored elsewhere.
    """

    __tablename__ = "tombstones"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DelegationRow(Base):
    """A delegation from one identity to another: effective once both accepted, until it
    expires or either party revokes it."""

    __tablename__ = "delegations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    delegator_token: Mapped[str] = mapped_column(
        String(40), ForeignKey("identities.token", ondelete="CASCADE")
    )
    delegatee_token: Mapped[str] = mapped_column(
        String(40), ForeignKey("identities.token", ondelete="CASCADE")
    )
    permissions: Mapped[str] = mapped_column(Text)  # JSON list
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delegator_accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delegatee_accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_delegations_delegatee", "delegatee_token", "delegator_token"),
        # The agent's borrowers a page at a time, keyset by id (migration 0035).
        Index("ix_delegations_delegatee_id", "delegatee_token", "id"),
        Index("ix_delegations_delegator", "delegator_token"),
    )
