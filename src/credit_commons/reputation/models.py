"""Tables of the reputation domain's events and members (migration 0038) and the DIDs the
scorer leaves out (migration 0043)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = [
    "ReputationBlobRow",
    "ReputationEventRow",
    "ReputationExclusionRow",
    "ReputationMemberRow",
]


class ReputationEventRow(Base):
    """An accepted vouch or report, by its CID: the fields the budgets, replay check and
    scorer read (the signed event itself is its blob).  (``sender``, ``nonce``) is unique
    forever (replay); (``sender``, ``ctx``, ``epoch``, ``type``) is indexed for budgets."""

    __tablename__ = "reputation_events"
    __table_args__ = (
        UniqueConstraint("sender", "nonce"),
        Index("ix_reputation_events_budget", "sender", "ctx", "epoch", "type"),
        Index("ix_reputation_events_recipient", "recipient", "ctx"),
    )

    cid: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(8))
    sender: Mapped[str] = mapped_column(String(128))
    recipient: Mapped[str] = mapped_column(String(128))
    ctx: Mapped[str] = mapped_column(String(98))
    epoch: Mapped[str] = mapped_column(String(7))
    nonce: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[str] = mapped_column(String(32))  # the spine's reputation.event


class ReputationBlobRow(Base):
    """The exact bytes a CID addresses (RFC 8785 JSON of a signed event), served at
    ``GET /v1/blobs/{cid}``."""

    __tablename__ = "reputation_blobs"

    cid: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class ReputationMemberRow(Base):
    """One credential a DID registered with: KYC (of a type and issuer the rule set lists)
    or an attestation.  A DID is a member while it has a KYC row neither revoked nor
    suspended; ``suspended_at`` is cleared when the credential is reinstated (a pause), a
    revocation is final."""

    __tablename__ = "reputation_members"
    __table_args__ = (UniqueConstraint("did", "credential_sha256"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    did: Mapped[str] = mapped_column(String(128), index=True)
    kyc: Mapped[bool] = mapped_column(Boolean)
    issuer: Mapped[str] = mapped_column(String(512))
    vct: Mapped[str] = mapped_column(String(512))
    credential_sha256: Mapped[str] = mapped_column(String(64))
    status_ref: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    since: Mapped[date] = mapped_column(Date)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The spine's reputation.member; indexed for GET /v1/reputation/members/{event_id}.
    event_id: Mapped[str] = mapped_column(String(32), index=True)
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The x5c chain (JSON) of a credential whose issuer an X.509 anchor certifies: the key
    # its status list is verified under comes from the chain's end-entity certificate.
    x5c: Mapped[str | None] = mapped_column(Text, nullable=True)


class ReputationExclusionRow(Base):
    """A DID the scorer leaves out for good (docs/reputation.md "Excluded DIDs"): its own
    signed tombstone (``reason`` ``tombstone``) or the erasure of the identity it belongs
    to (``erased``); ``event_id`` is the ``reputation.excluded`` spine event."""

    __tablename__ = "reputation_exclusions"

    did: Mapped[str] = mapped_column(String(128), primary_key=True)
    reason: Mapped[str] = mapped_column(String(16))
    excluded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[str] = mapped_column(String(32))
