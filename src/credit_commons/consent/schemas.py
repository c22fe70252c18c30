"""HTTP response shapes of consent: what its services return and its routes answer
(``gateway/routes/consent.py``), and the consent domain's part of a data-subject export."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from credit_commons.ledger import PendingReceipt, Receipt

__all__ = [
    "AccessRecord",
    "AssistAnswer",
    "AssistGranted",
    "AssistStarted",
    "AssistingAgent",
    "ConsentDecision",
    "ConsentView",
    "DenialCount",
    "DiscoveredBorrower",
    "DiscoverySetting",
    "ExportedConsent",
    "GrantedScope",
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


class GrantedScope(_Out):
    """A credential type and the claim paths of it the consent grants (as stored: the
    members in this order)."""

    claims: list[str]
    type: str


class _ConsentTerms(_Out):
    # The members every view of a consent shares, in the order they are answered.
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
    scopes: list[GrantedScope]
    approval: str | None
    assisted: bool
    uses: int
    artefact: str | None
    created_at: str
    updated_at: str


class ConsentView(_ConsentTerms):
    """A consent as its lender and its borrower see it, with its signed artefact (a JWS)
    once granted.  ``event_id`` only in the answer to the request that recorded one (the
    routes answer the members set, ``response_model_exclude_unset``)."""

    event_id: str | None = Field(None, description="the event this request recorded")


class ConsentDecision(ConsentView):
    """A consent after a decision, with the decision's event and, for a revocation, the
    log's signed receipt of it."""

    receipt: PendingReceipt | None = None


class AssistGranted(_ConsentTerms):
    """The granted consent, once the borrower's one-time code was right."""

    accepted: bool
    event_id: str | None = Field(None, description="the event this request recorded")


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


class AssistingAgent(_Out):
    """The field agent who helped the borrower with a consent, by the name they registered
    (``name`` is ``None`` once the agent's data was erased), and whether their help ended in
    the consent being granted (``approval: assisted``)."""

    consent_id: str
    name: str | None
    granted: bool


class RetrievedCredential(_Out):
    """A credential under consent: an SD-JWT presentation disclosing the granted claims."""

    consent_id: str
    type: str
    credential: str
    disclosed: list[str]
    mode: str
    data_life: Period
    access_event_id: str


class ExportedConsent(_Out):
    """A consent in the subject's data export: its terms, status, approval, uses and the
    signed artefact the lender holds."""

    consent_id: str
    status: str
    lender: str = Field(description="the lender's client id")
    template: str
    purpose: Purpose
    mode: str
    fetch_type: str
    frequency: Period
    data_life: Period
    scopes: list[GrantedScope]
    consent_start: str
    consent_expiry: str
    approval: str | None
    assisted: bool
    uses: int
    artefact: str | None
    created_at: str
    updated_at: str


class DiscoveredBorrower(_Out):
    """An opted-in borrower's public attributes and a reference bound to the lender."""

    borrower_ref: str
    credit_tier: str
    income_bracket: str
    debt_ratio_bracket: str


class DiscoverySetting(_Out):
    """Whether the borrower is discoverable, and the attributes published if so (absent
    when not: the route answers ``response_model_exclude_none``)."""

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
