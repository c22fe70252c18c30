"""HTTP response shapes of data-subject requests, export and erasure: what the privacy
services return and its routes answer (``gateway/routes/privacy.py``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from credit_commons.consent import AccessRecord, ExportedConsent
from credit_commons.core.encoding import JsonObject
from credit_commons.identity import ExportedDelegation, ExportedIdentifier, IdentityView
from credit_commons.issuer import ExportedCredential
from credit_commons.ledger import PendingReceipt

__all__ = [
    "DsrConfirmed",
    "DsrOpened",
    "ErasureReceipt",
    "SubjectExport",
]


class _Out(BaseModel):
    # A response shape: exactly these members (the schema says additionalProperties: false).
    model_config = ConfigDict(extra="forbid")


class DsrOpened(_Out):
    """An opened request: the message to sign with the subject's DID key to confirm it."""

    request_id: str
    challenge: str
    kind: str
    expires_at: str
    sign: str = Field(description="the exact message to sign")


class DsrConfirmed(_Out):
    """A confirmed request: the one-time token that runs it (``X-DSR-Token``)."""

    dsr_token: str
    expires_at: str
    kind: str


class ErasureReceipt(_Out):
    """What an erasure removed, and the signed receipt of its ``subject.erased`` event."""

    erased: bool
    event_id: str
    subject_keys_destroyed: int
    identifiers_unlinked: int
    consents_deleted: int
    credentials_unlinked: int
    offers_deleted: int
    codes_removed: int
    epoch: int = Field(description="the erasure epoch it was counted in (docs/privacy.md)")
    epoch_opened_at: str
    unreadable_in_backups_after: str
    receipt: PendingReceipt


class SubjectExport(_Out):
    """Everything held on the subject (GDPR Art. 15 and 20; DPDP §11)."""

    format: str
    subject: IdentityView
    profile: JsonObject = Field(description="the personal fields as registered")
    attributes: JsonObject = Field(description="the attributes as registered")
    identifiers: list[ExportedIdentifier]
    delegations: list[ExportedDelegation]
    credentials: list[ExportedCredential]
    consents: list[ExportedConsent]
    access_history: list[AccessRecord]
    events: list[JsonObject] = Field(description="every event about the subject, in full")
