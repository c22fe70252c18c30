"""The verifier: checking credentials, presentations and predicate attestations.

Above the issuer (whose catalogue, identifiers and status lists it reads through the
issuer's service modules) and below consent and the lender client, which verify through
the names here.  The modules:

* ``pipeline`` — the platform's verification, its steps numbered in the order they run
  (seed 002 §5's ten: challenge, holder binding, issuer signature, privacy tombstone, DID
  key binding, issuer trust, predicates, zero-knowledge predicates, status, policy floor):
  :func:`verify_presentation`, :func:`verify_sd_jwt_credential`,
  :func:`verify_vc_jwt_credential`, and ``decide`` for OpenID4VP responses;
* ``sd_jwt_verify`` — the RFC 9901 verifier for any key resolver (:func:`verify_sd_jwt`);
* ``sd_jwt_vc`` — the SD-JWT VC checks after it, pure (shared with the lender client);
* ``trust`` — the trust list of foreign issuers (table in ``models``);
* ``schemas`` — what the services return and the routes answer (``SdJwtVerified``,
  ``VcJwtVerified``, ``TrustedIssuerView``);
* ``foreign`` — foreign issuers' keys and status lists, fetched safely and cached;
* ``status_fetch`` — fetching and checking another issuer's Token Status List;
* ``predicates`` — a relying party's check of a predicate attestation;
* ``trust_bundle`` — the signed, versioned, expiring trust bundle and its lookup
  (:class:`TrustBundle`, :func:`verify_bundle`, :class:`IssuerNotTrusted`), pure;
* ``policy`` — the policy engine's rules (:class:`Policy`, :class:`PolicyDenied`,
  :func:`check_version_floor`), pure, and ``policy_json`` their JSON documents;
* ``profiles`` — the compliance profiles that only tighten a policy;
* ``reasons`` — the precise reasons of the pipeline's denials and the uniform
  ``not_allowed`` the presenter sees;
* ``transactions`` and ``service`` — OpenID4VP transactions: requests, the response
  endpoint's decisions, the verifier's status and decision (table in ``models``);
* ``did_binding`` — step 5, the holder DID's authorization of the ``cnf`` key.
"""

from __future__ import annotations

from credit_commons.verifier.foreign import (
    ForeignIssuers,
    IssuerMetadataInvalid,
    UnknownForeignKey,
    foreign_issuers,
    metadata_url,
)
from credit_commons.verifier.issuer_keys import certified_key
from credit_commons.verifier.pipeline import (
    verify_presentation,
    verify_sd_jwt_credential,
    verify_vc_jwt_credential,
)
from credit_commons.verifier.policy import (
    AllOf,
    AnyOf,
    EvaluationContext,
    MaxCredentialAge,
    Policy,
    PolicyDenied,
    PolicyInvalid,
    Predicate,
    RequireClaims,
    RequireHolderBinding,
    RequireIssuerKind,
    RequirePurpose,
    RequireStatusCheck,
    RequireTrustMarks,
    RequireType,
    Rule,
    VerifiedCredential,
    check_version_floor,
)
from credit_commons.verifier.policy_json import parse_policy, policy_document
from credit_commons.verifier.predicate_errors import (
    AttestationAudienceMismatch,
    AttestationExpired,
    AttestationInvalid,
    AttestationMalformed,
    AttestationNonceMismatch,
    AttestationNotYetValid,
    AttestationSignatureInvalid,
)
from credit_commons.verifier.predicates import verify_attestation
from credit_commons.verifier.profiles import PROFILES, Profile, ProfileUnknown, apply_profile
from credit_commons.verifier.reasons import PRESENTER_DENIAL, Reason, VerificationDenied
from credit_commons.verifier.schemas import (
    AcceptedResponse,
    PresentationRequest,
    PresentedCredential,
    RequestCreated,
    SdJwtVerified,
    TransactionStatus,
    VerifierDecision,
)
from credit_commons.verifier.sd_jwt_vc import (
    SD_JWT_VC_TYP,
    CredentialRevoked,
    CredentialSuspended,
    StatusReference,
    UnknownIssuerKey,
    UntrustedIssuer,
    VcFacts,
    disclosed_claims,
    raise_for_status,
    sd_jwt_vc_facts,
)
from credit_commons.verifier.sd_jwt_verify import IssuerKeyResolver, KeyBinding, Verified
from credit_commons.verifier.sd_jwt_verify import verify as verify_sd_jwt
from credit_commons.verifier.status_fetch import (
    StatusListCache,
    StatusListFetcher,
    StatusListRejected,
    status_list_cache,
)
from credit_commons.verifier.threshold_proof import (
    ANY_AUDIENCE,
    THRESHOLD_STATEMENT,
    threshold_request_hash,
    verify_threshold_proof,
)
from credit_commons.verifier.trust import (
    EntryKind,
    IssuerKind,
    IssuerTrusted,
    IssuerUntrusted,
    add_trusted_issuer,
    issuer_kind,
    list_trusted_issuers,
    remove_trusted_issuer,
    trusted_kind,
)
from credit_commons.verifier.trust_bundle import (
    TRUST_BUNDLE_TYP,
    IssuerNotTrusted,
    TrustBundle,
    TrustBundleExpired,
    TrustBundleInvalid,
    TrustBundleRollback,
    TrustBundleSignatureInvalid,
    TrustEntry,
    sign_bundle,
    verify_bundle,
)

__all__ = [
    "ANY_AUDIENCE",
    "PRESENTER_DENIAL",
    "PROFILES",
    "SD_JWT_VC_TYP",
    "THRESHOLD_STATEMENT",
    "TRUST_BUNDLE_TYP",
    "AcceptedResponse",
    "AllOf",
    "AnyOf",
    "AttestationAudienceMismatch",
    "AttestationExpired",
    "AttestationInvalid",
    "AttestationMalformed",
    "AttestationNonceMismatch",
    "AttestationNotYetValid",
    "AttestationSignatureInvalid",
    "CredentialRevoked",
    "CredentialSuspended",
    "EntryKind",
    "EvaluationContext",
    "ForeignIssuers",
    "IssuerKeyResolver",
    "IssuerKind",
    "IssuerMetadataInvalid",
    "IssuerNotTrusted",
    "IssuerTrusted",
    "IssuerUntrusted",
    "KeyBinding",
    "MaxCredentialAge",
    "Policy",
    "PolicyDenied",
    "PolicyInvalid",
    "Predicate",
    "PresentationRequest",
    "PresentedCredential",
    "Profile",
    "ProfileUnknown",
    "Reason",
    "RequestCreated",
    "RequireClaims",
    "RequireHolderBinding",
    "RequireIssuerKind",
    "RequirePurpose",
    "RequireStatusCheck",
    "RequireTrustMarks",
    "RequireType",
    "Rule",
    "SdJwtVerified",
    "StatusListCache",
    "StatusListFetcher",
    "StatusListRejected",
    "StatusReference",
    "TransactionStatus",
    "TrustBundle",
    "TrustBundleExpired",
    "TrustBundleInvalid",
    "TrustBundleRollback",
    "TrustBundleSignatureInvalid",
    "TrustEntry",
    "UnknownForeignKey",
    "UnknownIssuerKey",
    "UntrustedIssuer",
    "VcFacts",
    "VerificationDenied",
    "Verified",
    "VerifiedCredential",
    "VerifierDecision",
    "add_trusted_issuer",
    "apply_profile",
    "certified_key",
    "check_version_floor",
    "disclosed_claims",
    "foreign_issuers",
    "issuer_kind",
    "list_trusted_issuers",
    "metadata_url",
    "parse_policy",
    "policy_document",
    "raise_for_status",
    "remove_trusted_issuer",
    "sd_jwt_vc_facts",
    "sign_bundle",
    "status_list_cache",
    "threshold_request_hash",
    "trusted_kind",
    "verify_attestation",
    "verify_bundle",
    "verify_presentation",
    "verify_sd_jwt",
    "verify_sd_jwt_credential",
    "verify_threshold_proof",
    "verify_vc_jwt_credential",
]
