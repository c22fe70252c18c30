"""Tables of the identity domain.  Nothing personal is stored in clear: profile and
attributes are sealed by the vault; identifiers exist only as keyed pseudonyms."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["AccessTokenRow", "DelegationRow", "IdentifierLinkRow", "IdentityRow", "TombstoneRow"]


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
    """An identifier (Aadhaar, PAN, GSTIN, Udyam, mobile) as a keyed pseudonym only.

    The primary key on the pseudonym enforces that one identifier belongs to one identity.
    """

    __tablename__ = "identity_identifiers"

    pseudonym: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    identity_token: Mapped[str] = mapped_column(
        String(40), ForeignKey("identities.token", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_identity_identifiers_token", "identity_token"),)


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
        Index("ix_delegations_delegator", "delegator_token"),
    )
