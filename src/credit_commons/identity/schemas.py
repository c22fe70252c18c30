"""HTTP and CLI input/output shapes of the identity domain (no additional properties)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from credit_commons.identity.identifiers import IdentifierKind

__all__ = [
    "AttestationView",
    "Attributes",
    "AuthorityCreated",
    "AuthorityView",
    "BindingView",
    "ClaimAnswer",
    "DelegationCreate",
    "DelegationType",
    "DelegationView",
    "DeskToken",
    "ExportedDelegation",
    "ExportedIdentifier",
    "IdentifierBinding",
    "IdentifierView",
    "IdentityCreate",
    "IdentityCreated",
    "IdentityKind",
    "IdentityUpdate",
    "IdentityView",
    "Permission",
    "Profile",
    "ProfileView",
    "Role",
    "VerificationLevel",
]

IDENTITY_TOKEN_PATTERN = r"^idt_[a-zA-Z0-9]{12,32}$"  # noqa: S105 - a format, not a secret
IdentityToken = Annotated[str, StringConstraints(pattern=IDENTITY_TOKEN_PATTERN)]


class Role(StrEnum):
    """Roles an identity may hold (seed 003)."""

    CITIZEN = "citizen"
    FARMER = "farmer"
    BUSINESS = "business"
    GUARDIAN = "guardian"
    FIELD_AGENT = "field_agent"
    LENDER = "lender"
    ISSUER = "issuer"
    ADMIN = "admin"


class IdentityKind(StrEnum):
    """A natural person or an enterprise (MSME) owned by one."""

    PERSON = "person"
    ENTERPRISE = "enterprise"


class VerificationLevel(StrEnum):
    """How well the identity has been verified."""

    NONE = "none"
    PHONE_VERIFIED = "phone_verified"
    DOCUMENT_VERIFIED = "document_verified"
    IN_PERSON_VERIFIED = "in_person_verified"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Profile(_Strict):
    """Personal fields; sealed by the vault, never stored in clear."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    phone: Annotated[str, StringConstraints(max_length=20)] | None = None
    email: (
        Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
        | None
    ) = None
    address: Annotated[str, StringConstraints(max_length=500)] | None = None
    did: (
        Annotated[
            str, StringConstraints(max_length=512, pattern=r"^did:(key|web):[A-Za-z0-9._:%-]+$")
        ]
        | None
    ) = None
    """A DID the person controls; signing a challenge with it confirms data-subject requests."""


class Attributes(_Strict):
    """Attributes predicates may be evaluated over; sealed by the vault."""

    birth_date: date | None = None
    income_annual: Annotated[int, Field(ge=0, le=10**12)] | None = None
    state: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None
    gender: Annotated[str, StringConstraints(max_length=32)] | None = None
    bpl_status: bool | None = None
    land_holding: Annotated[float, Field(ge=0, le=10**6)] | None = None
    marital_status: Annotated[str, StringConstraints(max_length=32)] | None = None
    dependents_count: Annotated[int, Field(ge=0, le=100)] | None = None


class IdentityCreate(_Strict):
    """A registration: who, what they may do, and how to recognise them."""

    kind: IdentityKind = IdentityKind.PERSON
    roles: Annotated[list[Role], Field(min_length=1, max_length=5)] = [Role.CITIZEN]
    profile: Profile
    attributes: Attributes = Attributes()
    identifiers: Annotated[
        dict[IdentifierKind, Annotated[str, StringConstraints(max_length=64)]], Field(max_length=5)
    ] = {}
    owner_token: IdentityToken | None = None


class IdentifierBinding(_Strict):
    """An onboarding authority's attestation that ``identity_token`` holds an identifier.

    ``evidence_ref`` is the authority's own reference to what it checked (a KYC record
    number, a document id); the platform keeps only a keyed digest of it.
    """

    identity_token: IdentityToken
    kind: IdentifierKind
    value: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    evidence_ref: Annotated[
        str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    ]


class DelegationType(StrEnum):
    """Who acts for whom (seed 003, seed 000's assisted consent)."""

    PARENT_CHILD = "parent_child"
    GUARDIAN_WARD = "guardian_ward"
    BUSINESS_OWNER = "business_owner"
    FIELD_AGENT_ASSIST = "field_agent_assist"


class Permission(StrEnum):
    """What a delegate may do for the delegator."""

    READ_PROFILE = "read:profile"
    UPDATE_PROFILE = "update:profile"
    READ_CREDENTIALS = "read:credentials"
    MANAGE_CONSENTS = "manage:consents"
    ASSIST_CONSENT = "assist:consent"
    READ_SCHEMES = "read:schemes"
    APPLY_SCHEMES = "apply:schemes"


class DelegationCreate(_Strict):
    """A delegation offered by the delegator (who accepts it by creating it)."""

    delegatee_token: IdentityToken
    type: DelegationType
    permissions: Annotated[list[Permission], Field(min_length=1, max_length=7)]
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] = 365


class IdentityUpdate(_Strict):
    """An administrator's change to roles or verification level (seed 003 §10)."""

    roles: Annotated[list[Role], Field(min_length=1, max_length=5)] | None = None
    verification_level: VerificationLevel | None = None


# -- responses (what the services return and the routes answer) ----------------------------


class _Out(BaseModel):
    # A response shape: exactly these members (the schema says additionalProperties: false).
    model_config = ConfigDict(extra="forbid")


class IdentifierView(_Out):
    """One of an identity's identifiers: its kind and binding, never its value."""

    kind: str
    status: str = Field(description="unverified or bound")
    authority_id: str | None = None
    evidence_digest: str | None = None
    bound_at: str | None = None


class ExportedIdentifier(IdentifierView):
    """One of the subject's identifiers in their export: its kind and binding, and the
    keyed pseudonym it is held as (never its value)."""

    pseudonym: str


class IdentityCreated(_Out):
    """A registered identity and its first access token (shown once)."""

    identity_token: str
    access_token: str
    expires_at: str
    event_id: str
    identifiers: list[IdentifierView]


class IdentityView(_Out):
    """Identity metadata: no personal data."""

    identity_token: str
    kind: str
    roles: list[str]
    verification_level: str
    owner_token: str | None
    created_at: str
    identifiers: list[IdentifierView]


class ProfileView(_Out):
    """The identity's personal fields as registered (empty when it has none)."""

    name: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    did: str | None = None


class ClaimAnswer(_Out):
    """Whether one claim holds: never the value."""

    claim: str
    satisfied: bool


class AttestationView(_Out):
    """A signed attestation (a JWT) of boolean results, with the results in clear."""

    attestation: str
    results: list[ClaimAnswer]
    all_satisfied: bool


class DelegationView(_Out):
    """A delegation, with whether it is in effect now."""

    id: str
    type: str
    delegator_token: str
    delegatee_token: str
    permissions: list[str]
    expires_at: str
    accepted_by_delegator: bool
    accepted_by_delegatee: bool
    revoked: bool
    effective: bool


class ExportedDelegation(_Out):
    """A delegation the subject is a party to, in their export: their role in it and its
    whole history."""

    id: str
    type: str
    role: str = Field(description="delegator or delegatee")
    delegator_token: str
    delegatee_token: str
    permissions: list[str]
    delegator_accepted_at: str | None
    delegatee_accepted_at: str | None
    expires_at: str
    revoked: bool
    revoked_at: str | None
    created_at: str


class AuthorityView(_Out):
    """An onboarding authority."""

    authority_id: str
    kind: str
    name: str
    lender_client_id: str | None
    active: bool
    created_at: str
    updated_at: str


class AuthorityCreated(AuthorityView):
    """A designated authority; an issuer desk's bearer token is shown once."""

    # A bank's answer leaves both unset, and its route omits unset members.

    token: str | None = None
    token_expires_at: str | None = None


class DeskToken(_Out):
    """An issuer desk's bearer token, shown once."""

    authority_id: str
    token: str
    token_expires_at: str


class BindingView(_Out):
    """An identifier bound to an identity, and the event that recorded it (``null`` when
    it was bound already): the identity's token, then the identifier's members as
    :class:`IdentifierView` has them, in the order the answer has always had."""

    identity_token: str
    kind: str
    status: str = Field(description="unverified or bound")
    authority_id: str | None = None
    evidence_digest: str | None = None
    bound_at: str | None = None
    event_id: str | None
