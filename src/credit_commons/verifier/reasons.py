"""The precise reasons of the verifier's denials, and the one uniform denial the presenter sees.

Seed 002 §5: toward the presenter every denial is the same ``{"error": "not_allowed"}``
(:data:`PRESENTER_DENIAL`), whatever failed — a wallet, or whoever holds its presentation,
learns nothing about which check it failed, so it cannot probe the verifier step by step.
The verifier's own decision record and the ``verification.decided`` event carry the
:class:`Reason`.

:func:`reason_of` translates what a pipeline step raised into its reason.  Anything it does
not know — a database error, a fetch that failed, an unexpected exception in a step — is
:attr:`Reason.DEPENDENCY_FAILURE`: the pipeline fails closed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from sqlalchemy.exc import SQLAlchemyError

from credit_commons.core.errors import IntegrityError
from credit_commons.formats import sd_jwt_errors as sd
from credit_commons.formats import vp_jwt
from credit_commons.formats.jws import JwsInvalid
from credit_commons.formats.vc_jose import VcJoseInvalid
from credit_commons.formats.vc_jwt import VcJwtExpired, VcJwtInvalid
from credit_commons.keys import (
    AlgorithmNotAllowed,
    DidInvalid,
    DidResolutionFailed,
    KeyInvalid,
    KeyTypeMismatch,
    SignatureInvalid,
)
from credit_commons.verifier.foreign import UnknownForeignKey
from credit_commons.verifier.policy import PolicyDenied
from credit_commons.verifier.sd_jwt_vc import (
    CredentialRevoked,
    CredentialSuspended,
    UnknownIssuerKey,
    UntrustedIssuer,
)
from credit_commons.verifier.trust_bundle import IssuerNotTrusted

__all__ = ["PRESENTER_DENIAL", "Reason", "VerificationDenied", "of_database", "reason_of"]

PRESENTER_DENIAL: Final = "not_allowed"
"""The ``error`` of every denial the presenter sees (seed 002 §5, non-oracular)."""


class Reason(StrEnum):
    """Why the pipeline denied, by step (seed 002 §5).  Stable: decision records, events and
    docs/verifier.md name these values."""

    # Before the pipeline: the response itself.
    RESPONSE_INVALID = "response_invalid"
    WALLET_ERROR = "wallet_error"
    DCQL_UNSATISFIED = "dcql_unsatisfied"
    # Step 1: the challenge.
    CHALLENGE_NOT_FOUND = "challenge_not_found"
    CHALLENGE_CONSUMED = "challenge_consumed"
    CHALLENGE_EXPIRED = "challenge_expired"
    REQUEST_HASH_MISMATCH = "request_hash_mismatch"
    # Step 2: the KB-JWT holder binding.
    KB_JWT_MISSING = "kb_jwt_missing"
    BINDING_INVALID = "binding_invalid"
    KB_STALE = "kb_stale"
    AUD_MISMATCH = "aud_mismatch"
    NONCE_MISMATCH = "nonce_mismatch"
    SD_HASH_MISMATCH = "sd_hash_mismatch"
    # Step 3: the issuer signature (and the credential's own validity period).
    SIGNATURE_INVALID = "signature_invalid"
    CREDENTIAL_INVALID = "credential_invalid"
    CREDENTIAL_EXPIRED = "credential_expired"
    ISSUER_UNKNOWN = "issuer_unknown"
    # ... for an issuer trusted through an X.509 anchor, its x5c chain.
    ISSUER_CHAIN_INVALID = "issuer_chain_invalid"
    ISSUER_CERTIFICATE_EXPIRED = "issuer_certificate_expired"
    ISSUER_CHAIN_NAME_MISMATCH = "issuer_chain_name_mismatch"
    # Step 4: the privacy tombstone.
    PRIVACY_ERASED = "privacy_erased"
    # Step 5: the DID key binding.
    DID_KEY_NOT_AUTHORIZED = "did_key_not_authorized"
    # Step 6: issuer trust.
    ISSUER_NOT_TRUSTED = "issuer_not_trusted"
    # Step 7: the policy's rules (their reasons, verifier/policy.py).
    PREDICATE_FAILED = "predicate_failed"
    TYPE_NOT_ACCEPTED = "type_not_accepted"
    CLAIM_MISSING = "claim_missing"
    NO_ALTERNATIVE = "no_alternative"
    TRUST_MARK_MISSING = "trust_mark_missing"
    STATUS_UNCHECKED = "status_unchecked"
    HOLDER_UNBOUND = "holder_unbound"
    CREDENTIAL_AGE_UNKNOWN = "credential_age_unknown"
    CREDENTIAL_TOO_OLD = "credential_too_old"
    PURPOSE_MISSING = "purpose_missing"
    PURPOSE_NOT_ALLOWED = "purpose_not_allowed"
    ISSUER_KIND_NOT_ACCEPTED = "issuer_kind_not_accepted"
    # Step 8: zero-knowledge predicates (verifier/zk_step.py).
    ZK_UNSUPPORTED = "zk_unsupported"
    ZK_STATEMENT_UNKNOWN = "zk_statement_unknown"
    ZK_SETUP_NOT_ALLOWED = "zk_setup_not_allowed"
    ZK_ARTEFACT_MISMATCH = "zk_artefact_mismatch"
    ZK_PROOF_MISSING = "zk_proof_missing"
    ZK_PROOF_MALFORMED = "zk_proof_malformed"
    ZK_PROOF_REPLAYED = "zk_proof_replayed"
    ZK_BINDING_MISMATCH = "zk_binding_mismatch"
    ZK_PARAM_MISMATCH = "zk_param_mismatch"
    ZK_DAY_DRIFT = "zk_day_drift"
    ZK_COMMITMENT_MISMATCH = "zk_commitment_mismatch"
    ZK_PROOF_INVALID = "zk_proof_invalid"
    # Step 9: status.
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    # Step 10: the policy version floor.
    POLICY_VERSION_DOWNGRADE = "policy_version_downgrade"
    # Any step: fail closed.
    DEPENDENCY_FAILURE = "dependency_failure"


class VerificationDenied(IntegrityError):
    """A pipeline step denied, for :attr:`reason`.  The detail is for the verifier's record
    and logs only; the presenter sees :data:`PRESENTER_DENIAL`."""

    code = "verification.denied"
    title = "Not allowed"

    def __init__(self, reason: Reason, detail: str | None = None) -> None:
        super().__init__(detail or reason.value)
        self.reason = reason


# The errors the existing checks raise (RFC 9901 verifier, SD-JWT VC checks, DID
# resolution), most specific first: each class is looked up along the exception's MRO.
_BY_CLASS: Final[dict[type[BaseException], Reason]] = {
    sd.KeyBindingMissing: Reason.KB_JWT_MISSING,
    sd.KbNonceMismatch: Reason.NONCE_MISMATCH,
    sd.KbAudienceMismatch: Reason.AUD_MISMATCH,
    sd.SdHashMismatch: Reason.SD_HASH_MISMATCH,
    sd.KbStale: Reason.KB_STALE,
    sd.KeyBindingInvalid: Reason.BINDING_INVALID,
    sd.KeyBindingUnexpected: Reason.CREDENTIAL_INVALID,
    sd.SignatureInvalid: Reason.SIGNATURE_INVALID,
    sd.AlgorithmNotAllowed: Reason.SIGNATURE_INVALID,
    sd.Expired: Reason.CREDENTIAL_EXPIRED,
    sd.NotYetValid: Reason.CREDENTIAL_EXPIRED,
    sd.SdJwtInvalid: Reason.CREDENTIAL_INVALID,
    # A W3C credential in a VP-JWT (OpenID4VP 1.0 B.1): the holder's presentation (step 2),
    # then the credential inside (step 3).
    vp_jwt.VpNonceMismatch: Reason.NONCE_MISMATCH,
    vp_jwt.VpAudienceMismatch: Reason.AUD_MISMATCH,
    vp_jwt.VpStale: Reason.KB_STALE,
    vp_jwt.VpSignatureInvalid: Reason.BINDING_INVALID,
    vp_jwt.VpJwtInvalid: Reason.CREDENTIAL_INVALID,
    SignatureInvalid: Reason.SIGNATURE_INVALID,
    AlgorithmNotAllowed: Reason.SIGNATURE_INVALID,
    KeyTypeMismatch: Reason.SIGNATURE_INVALID,
    VcJwtExpired: Reason.CREDENTIAL_EXPIRED,
    VcJwtInvalid: Reason.CREDENTIAL_INVALID,
    VcJoseInvalid: Reason.CREDENTIAL_INVALID,
    JwsInvalid: Reason.CREDENTIAL_INVALID,
    UntrustedIssuer: Reason.ISSUER_NOT_TRUSTED,
    UnknownIssuerKey: Reason.ISSUER_UNKNOWN,
    UnknownForeignKey: Reason.ISSUER_UNKNOWN,
    CredentialRevoked: Reason.REVOKED,
    CredentialSuspended: Reason.SUSPENDED,
    # A holder DID that does not resolve, or names no usable key, authorizes no key.
    DidInvalid: Reason.DID_KEY_NOT_AUTHORIZED,
    KeyInvalid: Reason.DID_KEY_NOT_AUTHORIZED,
    # ... but a did:web that cannot be fetched is a dependency that failed.
    DidResolutionFailed: Reason.DEPENDENCY_FAILURE,
}


# An x5c chain's refusals (step 3), by IssuerNotTrusted's own reason.
_CHAIN: Final[dict[str, Reason]] = {
    "chain_invalid": Reason.ISSUER_CHAIN_INVALID,
    "chain_expired": Reason.ISSUER_CERTIFICATE_EXPIRED,
    "chain_name_mismatch": Reason.ISSUER_CHAIN_NAME_MISMATCH,
}


def reason_of(error: BaseException) -> Reason:
    """The reason a step's ``error`` stands for; :attr:`Reason.DEPENDENCY_FAILURE` for any
    error that is not a known refusal (database, network, a bug).  Raises nothing."""
    if isinstance(error, VerificationDenied):
        return error.reason
    if isinstance(error, PolicyDenied):
        # The rule's own reason; one this module does not know yet is still the policy's
        # refusal of the claims, never an allow.
        known = {r.value for r in Reason}
        return Reason(error.reason) if error.reason in known else Reason.PREDICATE_FAILED
    if isinstance(error, IssuerNotTrusted) and error.reason in _CHAIN:
        return _CHAIN[error.reason]
    for cls in type(error).__mro__:
        found = _BY_CLASS.get(cls)
        if found is not None:
            return found
    return Reason.DEPENDENCY_FAILURE


def of_database(error: BaseException | None, depth: int = 8) -> bool:
    """Whether ``error`` is a database error or was raised while handling one (its cause or
    context, ``depth`` links deep; a longer chain counts as one: fail closed)."""
    if error is None or isinstance(error, SQLAlchemyError) or depth == 0:
        return error is not None
    return of_database(error.__cause__ or error.__context__, depth - 1)
