"""HTTP response shapes of consent (documentation of what the routes send; the routes
return the services' values unchanged, see ``gateway/openapi.py``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from credit_commons.ledger.schemas import PendingReceipt, Receipt

__all__ = [
    "AccessRecord",
    "AssistAnswer",
    "AssistGranted",
    "AssistStarted",
    "ConsentDecision",
    "ConsentView",
    "DenialCount",
    "DiscoveredBorrower",
    "DiscoverySetting",
    "HolderKeyChanged",
    "Period",
    "Purpose",
    "RetrievedCredential",
    "RevokedAll",
]


class _Out(BaseModel):
    # A response shape: exactly these members (the schema says additionalProperties: false).
    model_config = ConfigDict(extra="forbid")


class Purpose(_Out):
    """A purpose code (ReBIT) and its text."""

    code: str
    text: str


class Period(_Out):
    """A duration: a unit and a count of it."""

    unit: str
    value: int


class ConsentView(_Out):
    """A consent as its lender and its borrower see it, with its signed artefact (a JWS)
    once granted."""

    consent_id: str
    status: str
    template: str
    lender: str = Field(description="the lender's client id")
    purpose: Purpose
    mode: str
    fetch_type: str
    frequency: Period
    data_life: Period
    consent_start: str
    consent_expiry: str
    scopes: list[dict[str, Any]]
    approval: str | None
    assisted: bool
    uses: int
    artefact: str | None
    created_at: str
    updated_at: str
    event_id: str | None = Field(None, description="the event this request recorded")


class ConsentDecision(ConsentView):
    """A consent after a decision, with the decision's event and, for a revocation, the
    log's signed receipt of it."""

    receipt: PendingReceipt | None = None


class AssistGranted(ConsentView):
    """The granted consent, once the borrower's one-time code was right."""

    accepted: bool


class RevokedAll(_Out):
    """The consents revoked, each with the receipt of its revocation."""

    revoked: list[str]
    receipts: dict[str, PendingReceipt]


class AssistStarted(_Out):
    """A one-time code was made for the borrower (and sent when a channel is configured)."""

    consent_id: str
    code_sent: bool
    expires_in: int = Field(description="seconds")


class AssistAnswer(_Out):
    """A wrong code: the consent's id and status, unchanged (``accepted: false``)."""

    consent_id: str
    status: str
    accepted: bool


class RetrievedCredential(_Out):
    """A credential under consent: an SD-JWT presentation disclosing the granted claims."""

    consent_id: str
    type: str
    credential: str
    disclosed: list[str]
    mode: str
    data_life: Period
    access_event_id: str


class DiscoveredBorrower(_Out):
    """An opted-in borrower's public attributes and a reference bound to the lender."""

    borrower_ref: str
    credit_tier: str
    income_bracket: str
    debt_ratio_bracket: str


class DiscoverySetting(_Out):
    """Whether the borrower is discoverable, and the attributes published if so."""

    discoverable: bool
    credit_tier: str | None = None
    income_bracket: str | None = None
    debt_ratio_bracket: str | None = None


class AccessRecord(_Out):
    """One access to the borrower's data, allowed or denied, with its receipt once a
    checkpoint covers it."""

    event_id: str
    at: str
    outcome: str
    actor: str
    actor_kind: str
    lender: str
    lender_name: str
    consent_id: str | None
    operation: str | None
    reason: str | None
    receipt: Receipt | None


class HolderKeyChanged(_Out):
    """The borrower's new DID."""

    identity: str
    did: str
    event_id: str


class DenialCount(_Out):
    """Refused requests in one hour, by operation, reason and actor."""

    hour: str
    operation: str
    reason: str
    actor: str
    count: int
