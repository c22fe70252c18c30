"""HTTP response shapes of consent (documentation of what the routes send; the routes
return the services' values unchanged, see ``gateway/openapi.py``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from credit_commons.ledger.schemas import PendingReceipt, Receipt

__all__ = [
    "AccessRecord",
    "AssistAnswer",
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


class Purpose(BaseModel):
    """A purpose code (ReBIT) and its text."""

    code: str
    text: str


class Period(BaseModel):
    """A duration: a unit and a count of it."""

    unit: str
    value: int


class ConsentView(BaseModel):
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


class RevokedAll(BaseModel):
    """The consents revoked, each with the receipt of its revocation."""

    revoked: list[str]
    receipts: dict[str, PendingReceipt]


class AssistStarted(BaseModel):
    """A one-time code was made for the borrower (and sent when a channel is configured)."""

    consent_id: str
    code_sent: bool
    expires_in: int = Field(description="seconds")


class AssistAnswer(BaseModel):
    """The answer to a submitted code: the granted consent when it was right
    (``accepted: true``), else its id and status only."""

    consent_id: str
    status: str
    accepted: bool
    event_id: str | None = None


class RetrievedCredential(BaseModel):
    """A credential under consent: an SD-JWT presentation disclosing the granted claims."""

    consent_id: str
    type: str
    credential: str
    disclosed: list[str]
    mode: str
    data_life: Period
    access_event_id: str


class DiscoveredBorrower(BaseModel):
    """An opted-in borrower's public attributes and a reference bound to the lender."""

    borrower_ref: str
    credit_tier: str
    income_bracket: str
    debt_ratio_bracket: str


class DiscoverySetting(BaseModel):
    """Whether the borrower is discoverable, and the attributes published if so."""

    discoverable: bool
    credit_tier: str | None = None
    income_bracket: str | None = None
    debt_ratio_bracket: str | None = None


class AccessRecord(BaseModel):
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


class HolderKeyChanged(BaseModel):
    """The borrower's new DID."""

    identity: str
    did: str
    event_id: str


class DenialCount(BaseModel):
    """Refused requests in one hour, by operation, reason and actor."""

    hour: str
    operation: str
    reason: str
    actor: str
    count: int
