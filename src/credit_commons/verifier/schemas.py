"""The verifier's contract: what its services take and return and the verification routes
answer (a verified credential or presentation, a trust-list entry, an OpenID4VP transaction:
its request, status and decision, and what the wallet is answered)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from credit_commons.core.encoding import JsonObject
from credit_commons.formats.oid4vp import ZkPredicateRequest
from credit_commons.verifier.sd_jwt_vc import VcFacts, disclosed_claims, status_read

__all__ = [
    "AcceptedResponse",
    "DiscardedPresentation",
    "PolicyView",
    "PresentationCheck",
    "PresentationRequest",
    "PresentedCredential",
    "RequestCreated",
    "SdJwtVerified",
    "TransactionStatus",
    "TrustBundleView",
    "TrustPinRefresh",
    "TrustPinView",
    "TrustedIssuerView",
    "VcJwtVerified",
    "VerifierDecision",
]


class _Out(BaseModel):
    # A response shape: exactly these members (the schema says additionalProperties: false).
    model_config = ConfigDict(extra="forbid")


class PresentationCheck(BaseModel):
    """A presentation and the audience and nonce the verifier asked for (``POST
    /v1/presentations/verify``, on the platform and on a full node alike)."""

    model_config = ConfigDict(extra="forbid")
    presentation: Annotated[str, Field(max_length=65536)]
    audience: Annotated[str, Field(min_length=1, max_length=255)]
    nonce: Annotated[str, Field(min_length=8, max_length=128)]


class SdJwtVerified(_Out):
    """A verified SD-JWT VC (or presentation): who issued it, its type, the disclosed claims
    and whether its status was checked — the platform's answer and a full node's
    (``POST /v1/presentations/verify``, ``POST /v1/credentials/verify``), one shape."""

    valid: Literal[True]
    issuer: str = Field(description="the credential's iss")
    vct: str
    claims: JsonObject
    status_checked: bool = Field(
        description="its status list was read (always for this platform's credentials; for "
        "another issuer's, when the credential names a list)"
    )

    @classmethod
    def of(cls, facts: VcFacts, payload: JsonObject, *, foreign: bool) -> SdJwtVerified:
        """The answer for a credential whose checks all passed (``payload``: its processed
        payload, disclosures applied; ``foreign``: not this platform's own issuer)."""
        return cls(
            valid=True,
            issuer=facts.issuer,
            vct=facts.vct,
            claims=disclosed_claims(payload),
            status_checked=status_read(facts, foreign=foreign),
        )


class VcJwtVerified(_Out):
    """A verified W3C credential: its types, holder and subject claims, and which it was —
    a VCDM 1.1 JWT (``jwt_vc_json``) or a VCDM 2.0 ``vc+jwt``."""

    valid: Literal[True]
    type: list[str]
    holder: str | None
    claims: JsonObject
    format: Literal["jwt_vc_json", "vc+jwt"] = "jwt_vc_json"


class TrustedIssuerView(_Out):
    """A trusted issuer entry: its trust marks and the credential types it may issue
    (``["*"]``: any), and why it can never verify anything when it cannot (``unusable``:
    a did:web naming an IP address, stored before adding one was refused)."""

    id: str
    issuer: str
    kind: str
    added_at: str
    marks: list[str] = []
    types: list[str] = ["*"]
    unusable: str | None = None


# -- OpenID4VP transactions ----------------------------------------------------------------


class PresentationRequest(BaseModel):
    """What a verifier asks for (``POST /v1/verifier/requests``): a DCQL query, the policy it
    is judged under (the verifier's own, else the platform's of that id; its current version
    is pinned) and the purpose it declares, the client identifier prefix — the
    platform's ``did:web`` with a signed request object by reference, or the response URI
    with an unsigned request by value — the response mode, where the wallet is sent with
    the response code once the response was accepted, and the zero-knowledge predicates it
    needs (none can be verified yet: such a request is denied ``zk_unsupported``)."""

    model_config = ConfigDict(extra="forbid")
    dcql_query: JsonObject
    policy_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = None
    purpose: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")] | None = None
    client_id_prefix: Literal["decentralized_identifier", "redirect_uri"] | None = Field(
        default=None,
        description="decentralized_identifier: the platform's did:web signs the request; "
        "redirect_uri: unsigned, by value. Default: decentralized_identifier when the "
        "platform's public URL carries a did:web (https, a domain name), else redirect_uri; "
        "decentralized_identifier asked of a platform without one is refused (422 "
        "verifier.prefix_unavailable)",
    )
    response_mode: Literal["direct_post", "direct_post.jwt"] = "direct_post"
    redirect_uri: Annotated[str, Field(min_length=8, max_length=1024)] | None = None
    zk_predicates: Annotated[list[ZkPredicateRequest], Field(max_length=16)] = []


class RequestCreated(_Out):
    """A transaction made: its id, the client identifier, and how to hand the request to a
    wallet — ``request_uri`` (signed request object, ``decentralized_identifier:``) or the
    request's parameters by value (``redirect_uri:``), both also as ``wallet_url``."""

    id: str
    client_id: str
    response_mode: str
    request_uri: str | None
    request: dict[str, str] | None
    wallet_url: str
    expires_at: str


class TransactionStatus(_Out):
    """Where a transaction is: ``pending`` (no response yet), ``decided`` or ``expired``;
    for a decided one the decision and, for a denial, its precise reason (the verifier's
    own record: the presenter only ever saw ``not_allowed``)."""

    id: str
    client_id: str
    state: Literal["pending", "decided", "expired"]
    decision: Literal["allow", "deny"] | None
    reason: str | None
    expires_at: str
    decided_at: str | None
    discarded: list[DiscardedPresentation] = []


class PresentedCredential(_Out):
    """One credential of an accepted response: the DCQL credential query it answered, its
    issuer and type (``vct``: an SD-JWT VC's type, or a W3C credential's most specific
    ``type``), its format with, for a W3C credential, all its ``types``, and the claims its
    holder disclosed (a W3C credential's ``credentialSubject`` without ``id``)."""

    query_id: str
    issuer: str
    vct: str
    claims: JsonObject
    format: str = "dc+sd-jwt"
    types: list[str] = []


class DiscardedPresentation(_Out):
    """A presentation the pipeline discarded (OpenID4VP 1.0 §8.6): the query it answered
    and why it failed (a reason of docs/verifier.md)."""

    query_id: str
    reason: str


class VerifierDecision(_Out):
    """An accepted response's decision with the disclosed claims, handed to the verifier
    once, against the response code."""

    id: str
    decision: Literal["allow"]
    decided_at: str
    credentials: list[PresentedCredential]


class AcceptedResponse(_Out):
    """The Response Endpoint's answer to the wallet (OpenID4VP 1.0 §8.2): where to send the
    user agent, with the response code, when the verifier gave one."""

    redirect_uri: str | None = None


class TrustPinView(_Out):
    """Another platform's trust bundle pinned by key: its URL, the pinned public JWK, and
    the bundle kept (version, issuer, number of entries, expiry, when fetched)."""

    id: str
    url: str
    key: JsonObject
    version: int
    iss: str | None
    issuers: int
    expires_at: str | None
    fetched_at: str | None
    pinned_at: str


class TrustPinRefresh(_Out):
    """The outcome of fetching a pinned bundle again: accepted (its version), or refused
    with the reason (``signature_invalid``, ``expired``, ``rollback``, ``invalid``,
    ``fetch_failed``) and the kept version."""

    id: str
    url: str
    accepted: bool
    version: int
    reason: str | None


class TrustBundleView(_Out):
    """The platform's trust bundle as administrators see it: the newest version, its
    entries, the key verifiers pin (public JWK and did:key), and the entries that can never
    verify anything, each with why (``unusable``)."""

    version: int
    iss: str
    issuers: list[JsonObject]
    unusable: dict[str, str] = {}
    key: JsonObject
    did: str


class PolicyView(_Out):
    """A verifier's policy version: the document as written, the effective policy after
    its compliance profile, and the policy's current version floor."""

    owner: str
    policy_id: str
    version: int
    profile: str
    document: JsonObject
    effective: JsonObject
    floor: int
    created_at: str
