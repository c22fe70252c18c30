"""Errors of predicate attestation verification.

They follow pyjwt: one class per failed check, all under :class:`AttestationInvalid`, so a
relying party can catch the root or tell the checks apart.  Their details name the check, never the
attested subject, the results or the expected values.
"""

from __future__ import annotations

from credit_commons.core.errors import IntegrityError

__all__ = [
    "AttestationAudienceMismatch",
    "AttestationExpired",
    "AttestationInvalid",
    "AttestationMalformed",
    "AttestationNonceMismatch",
    "AttestationNotYetValid",
    "AttestationSignatureInvalid",
]


class AttestationInvalid(IntegrityError):
    """Root of the errors :func:`~credit_commons.verifier.predicates.verify_attestation` raises."""

    code = "identity.attestation_invalid"
    title = "Predicate attestation invalid"


class AttestationMalformed(AttestationInvalid):
    """Not a well-formed predicate attestation: encoding, JSON, header or claim set shape."""

    code = "identity.attestation_malformed"
    title = "Predicate attestation malformed"


class AttestationSignatureInvalid(AttestationInvalid):
    """The ``alg`` is not accepted for the key, or the signature does not verify."""

    code = "identity.attestation_signature_invalid"
    title = "Predicate attestation signature invalid"


class AttestationExpired(AttestationInvalid):
    """The attestation's ``exp`` has passed (RFC 7519 §4.1.4), leeway included."""

    code = "identity.attestation_expired"
    title = "Predicate attestation expired"


class AttestationNotYetValid(AttestationInvalid):
    """The attestation's ``iat`` lies in the future beyond the leeway (RFC 7519 §4.1.6)."""

    code = "identity.attestation_not_yet_valid"
    title = "Predicate attestation not yet valid"


class AttestationAudienceMismatch(AttestationInvalid):
    """The attestation was issued to another audience (RFC 7519 §4.1.3)."""

    code = "identity.attestation_audience_mismatch"
    title = "Predicate attestation audience mismatch"


class AttestationNonceMismatch(AttestationInvalid):
    """The attestation answers another request: its ``nonce`` is not the caller's."""

    code = "identity.attestation_nonce_mismatch"
    title = "Predicate attestation nonce mismatch"
