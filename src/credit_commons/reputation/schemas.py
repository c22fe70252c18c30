"""What the reputation services return and the routes answer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from credit_commons.ledger import PendingReceipt

__all__ = ["EventAccepted", "MemberExcluded", "MemberRegistered"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventAccepted(_Out):
    """An accepted vouch or report: its CID (``GET /v1/blobs/{cid}`` serves it), its leaf
    index once the log has sequenced it (``null`` until then: fetch the full receipt at
    ``GET /v1/log/receipts/{event_id}`` once a checkpoint covers it), the spine event's id
    and the log's signed entry (a pending receipt)."""

    cid: str
    leaf_index: int | None
    event_id: str
    receipt: PendingReceipt


class MemberRegistered(_Out):
    """A DID's membership by one credential: KYC (the rule set's types and issuers) or an
    attestation; since when."""

    did: str
    kyc: bool
    vct: str
    credential_sha256: str = Field(description="SHA-256 hex of the issuer-signed JWT")
    since: date
    event_id: str


class MemberExcluded(_Out):
    """A DID left out of scoring for good: its own signed tombstone (``tombstone``) or the
    erasure of the identity it belongs to (``erased``); since when, and the
    ``reputation.excluded`` spine event that records it."""

    did: str
    reason: Literal["tombstone", "erased"]
    excluded_at: datetime
    event_id: str
