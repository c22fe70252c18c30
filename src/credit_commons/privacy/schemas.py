"""HTTP response shapes of data-subject requests, export and erasure (documentation of what
the routes send; the routes return the services' values unchanged, see
``gateway/openapi.py``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from credit_commons.identity.schemas import IdentityView
from credit_commons.ledger.schemas import PendingReceipt

__all__ = ["DsrConfirmed", "DsrOpened", "ErasureReceipt", "SubjectExport"]


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
    profile: dict[str, Any]
    attributes: dict[str, Any]
    identifiers: list[dict[str, Any]]
    delegations: list[dict[str, Any]]
    credentials: list[dict[str, Any]]
    consents: list[dict[str, Any]]
    access_history: list[dict[str, Any]]
    events: list[dict[str, Any]]
