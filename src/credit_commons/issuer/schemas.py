"""The issuer's contract: the input of the issuance API and the batch CLI (one shape for
both), the service's :class:`IssueRequest`, and the models of what the issuer's services
return and its routes answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from credit_commons.core.encoding import JsonObject

__all__ = [
    "MAX_BATCH",
    "AuthorizationServerMetadata",
    "BatchIssue",
    "CredentialIssuerMetadata",
    "CredentialOffer",
    "CredentialRecord",
    "CredentialResponse",
    "CredentialTypeView",
    "DidDocument",
    "ExportedCredential",
    "ExportedStatusEntry",
    "IssueItem",
    "IssueRequest",
    "IssuedBatch",
    "IssuedCredential",
    "JwtVcIssuerMetadata",
    "NonceResponse",
    "OfferCreated",
    "StatusChanged",
    "TokenResponse",
]

MAX_BATCH = 1_000
"""The most credentials one ``POST /v1/credentials/batch`` (and one CLI transaction) issues."""


@dataclass(frozen=True)
class IssueRequest:
    """One credential to issue: its type, subject, claims, holder key and format."""

    type_name: str
    subject_token: str
    claims: JsonObject
    holder_jwk: dict[str, str]
    credential_format: str = "dc+sd-jwt"


class IssueItem(BaseModel):
    """What to issue, to whom, bound to which holder key."""

    model_config = ConfigDict(extra="forbid")
    type: Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]{2,63}$")]
    subject: Annotated[str, Field(pattern=r"^idt_[a-zA-Z0-9]{12,32}$")]
    claims: JsonObject
    holder_jwk: dict[str, str]
    # vc+jwt: W3C VCDM 2.0 (issuer/credentials.py says why not jwt_vc_json any more).
    format: Literal["dc+sd-jwt", "vc+jwt"] = "dc+sd-jwt"

    def request(self) -> IssueRequest:
        """The service's request for this item."""
        return IssueRequest(self.type, self.subject, self.claims, self.holder_jwk, self.format)


class BatchIssue(BaseModel):
    """Up to :data:`MAX_BATCH` credentials issued together, all or none."""

    model_config = ConfigDict(extra="forbid")
    items: Annotated[list[IssueItem], Field(min_length=1, max_length=MAX_BATCH)]


# -- results: what the services return and the routes answer ------------------------------


class _Out(BaseModel):
    # A response shape: exactly these members (the schema says additionalProperties: false),
    # built by the services with the fields' Python names (an alias is the JSON name).
    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)


class CredentialTypeView(_Out):
    """A credential type of the catalogue: its JSON Schema and what may be disclosed."""

    name: str
    vct: str
    schema_: Annotated[JsonObject, Field(alias="schema")]
    disclosable: list[str]
    default_validity_days: int


class IssuedCredential(_Out):
    """An issued credential: the SD-JWT VC or VC-JWT itself, shown to the issuer once."""

    credential_id: str
    format: str
    credential: str
    expires_at: str
    event_id: str


class IssuedBatch(_Out):
    """The credentials of a batch, in the order of its items."""

    items: list[IssuedCredential]


class CredentialRecord(_Out):
    """Registry metadata of an issued credential (never the credential)."""

    credential_id: str
    type: str
    format: str
    issued_at: str
    expires_at: str


class StatusChanged(_Out):
    """A credential's new status."""

    credential_id: str
    status: str


class ExportedStatusEntry(_Out):
    """Where a credential's status is published: its status list and index in it."""

    uri: str
    index: int


class ExportedCredential(_Out):
    """A credential in its subject's data export: the registry metadata, its current
    status, and the credential itself, opened from the vault."""

    credential_id: str
    type: str
    format: str
    status: str
    expired: bool
    issued_at: str
    expires_at: str
    status_list: ExportedStatusEntry
    sha256: str
    credential: str


class JwtVcIssuerMetadata(_Out):
    """JWT VC Issuer Metadata (SD-JWT VC draft §5): the issuer and its keys."""

    issuer: str
    jwks: JsonObject


class DidDocument(_Out):
    """A did:web DID document (did:web method spec §3.2)."""

    context: Annotated[list[str], Field(alias="@context")]
    id: str
    verificationMethod: list[JsonObject]  # noqa: N815 - the DID Core member name
    assertionMethod: list[str]  # noqa: N815
    authentication: list[str]


class CredentialIssuerMetadata(_Out):
    """Credential Issuer Metadata (OID4VCI 1.0 §12.2)."""

    credential_issuer: str
    authorization_servers: list[str]
    credential_endpoint: str
    nonce_endpoint: str
    credential_configurations_supported: dict[str, JsonObject]


class AuthorizationServerMetadata(_Out):
    """Authorization Server Metadata (RFC 8414 §2) for the pre-authorized code flow."""

    issuer: str
    token_endpoint: str
    grant_types_supported: list[str]
    pre_authorized_anonymous: Annotated[
        bool, Field(alias="pre-authorized_grant_anonymous_access_supported")
    ]
    tls_client_certificate_bound_access_tokens: Annotated[
        bool,
        Field(
            description="RFC 8705 §3.3: true when mutual TLS is configured "
            "(COMMONS_CLIENT_CERT_HEADER) and certificate-bound lenders' access tokens carry "
            "cnf.x5t#S256"
        ),
    ]


class CredentialOffer(_Out):
    """A credential offer object (OID4VCI 1.0 §4.1.1)."""

    credential_issuer: str
    credential_configuration_ids: list[str]
    grants: JsonObject


class OfferCreated(_Out):
    """A credential offer (OID4VCI 1.0 §4.1), by value and by reference, and its
    transaction code when one was asked for."""

    offer_id: str
    credential_offer: CredentialOffer
    offer_uri: str
    offer_uri_by_reference: str
    tx_code: str | None
    expires_at: str


class TokenResponse(_Out):
    """An access token (RFC 6749 §5.1)."""

    access_token: str
    token_type: str
    expires_in: int


class NonceResponse(_Out):
    """A fresh nonce for key proofs (OID4VCI 1.0 §7.2)."""

    c_nonce: str


class CredentialResponse(_Out):
    """The issued credentials (OID4VCI 1.0 §8.3)."""

    credentials: list[dict[str, str]]
