"""Errors of the SD-JWT library (RFC 9901), one class per failed check.

Every verification failure is a :class:`SdJwtInvalid` (an :class:`IntegrityError`, HTTP 400)
with a stable ``credential.…`` code; the classes follow the numbered steps of RFC 9901 §7.
A few classes refine another one and keep its code, because the RFC states them as one rule:
:class:`ClaimNameExists` is the third case of the claim-name rule of §4.2.1 (code
``credential.reserved_claim``), :class:`DisclosureMisplaced` is the wrong-shape rule of §7.1
step 3.3.2.1/3.3.3.1 (``credential.malformed``) and :class:`EmbeddedKeyNotAllowed` is the JOSE
header policy of RFC 8725 §3.1 (``credential.algorithm_not_allowed``).

Issuance and presentation inputs that cannot be honoured (a disclosure path that names no
claim, a reserved claim name in the claims) are :class:`ValidationError` subclasses instead.
"""

from __future__ import annotations

from credit_commons.core.errors import IntegrityError, ValidationError

__all__ = [
    "AlgorithmNotAllowed",
    "ClaimNameExists",
    "ClaimsInvalid",
    "DigestCollision",
    "DisclosureDuplicate",
    "DisclosureMisplaced",
    "DisclosurePathInvalid",
    "DisclosureUnreferenced",
    "EmbeddedKeyNotAllowed",
    "Expired",
    "KbAudienceMismatch",
    "KbNonceMismatch",
    "KbStale",
    "KeyBindingInvalid",
    "KeyBindingMissing",
    "KeyBindingUnexpected",
    "Malformed",
    "NotYetValid",
    "ReservedClaim",
    "SdHashMismatch",
    "SdJwtInvalid",
    "SignatureInvalid",
]


class SdJwtInvalid(IntegrityError):
    """Root of every SD-JWT verification failure: the presentation must not be used."""

    code = "credential.invalid"
    title = "Credential invalid"


class Malformed(SdJwtInvalid):
    """The serialization, a JWT part, a Disclosure or a digest container has the wrong shape.

    Covers non-canonical base64url, invalid JSON (including duplicate member names), a JWT
    that is not three parts, a Disclosure that is not a 2- or 3-element array (RFC 9901
    §7.1 step 3.3.2.1 and 3.3.3.1) and an ``_sd`` that is not an array of strings.
    """

    code = "credential.malformed"
    title = "Malformed credential"


class DisclosureMisplaced(Malformed):
    """An array-element Disclosure referenced from ``_sd``, or a property one from ``...``."""


class SignatureInvalid(SdJwtInvalid):
    """The Issuer-signed JWT does not verify under the resolved issuer key (§7.1 step 2.2)."""

    code = "credential.signature_invalid"
    title = "Credential signature invalid"


class AlgorithmNotAllowed(SdJwtInvalid):
    """A JOSE ``alg`` outside the allow-list, ``none``, HMAC, an ``alg`` that does not fit the
    key's type, or an ``_sd_alg`` hash that is not accepted (§7.1 steps 2.1 and 2.4)."""

    code = "credential.algorithm_not_allowed"
    title = "Algorithm not allowed"


class EmbeddedKeyNotAllowed(AlgorithmNotAllowed):
    """The JOSE header carries its own key (``jwk``, ``jku``, ``x5u``, ``x5c``) or ``crit``.

    The verification key comes from the issuer key resolver only; a JWT must not choose it.
    """


class DisclosureUnreferenced(SdJwtInvalid):
    """A Disclosure whose digest is not embedded in the payload or a used Disclosure (step 5)."""

    code = "credential.disclosure_unreferenced"
    title = "Disclosure not referenced"


class DisclosureDuplicate(SdJwtInvalid):
    """The same Disclosure was sent more than once (RFC 9901 §4)."""

    code = "credential.disclosure_duplicate"
    title = "Disclosure sent twice"


class DigestCollision(SdJwtInvalid):
    """A digest value appears more than once in the payload or its Disclosures (step 4)."""

    code = "credential.digest_collision"
    title = "Digest appears more than once"


class ReservedClaim(SdJwtInvalid):
    """A Disclosure names ``_sd``, ``...`` or ``_sd_alg``, or the payload uses one of them
    other than as RFC 9901 §4.1 rule 7 and §4.1.1 allow (§7.1 step 3.3.2.2)."""

    code = "credential.reserved_claim"
    title = "Reserved claim name"


class ClaimNameExists(ReservedClaim):
    """A Disclosure's claim name already exists at the level of its ``_sd`` (step 3.3.2.3)."""


class KeyBindingMissing(SdJwtInvalid):
    """Key Binding is required but the presentation carries no KB-JWT (§7.3 step 2)."""

    code = "credential.key_binding_missing"
    title = "Key binding missing"


class KeyBindingUnexpected(SdJwtInvalid):
    """The verifier expects an SD-JWT without Key Binding (§7.3 step 1: its policy), but a
    KB-JWT came with it: it was presented for someone else, and is not checked here."""

    code = "credential.key_binding_unexpected"
    title = "Key binding not expected"


class KeyBindingInvalid(SdJwtInvalid):
    """The KB-JWT is malformed, not ``typ: kb+jwt``, not signed by the ``cnf`` key, or the
    SD-JWT has no usable ``cnf.jwk`` (§7.3 steps 5.1, 5.3, 5.4 and 5.8)."""

    code = "credential.key_binding_invalid"
    title = "Key binding invalid"


class KbAudienceMismatch(SdJwtInvalid):
    """The KB-JWT ``aud`` is not the expected audience (§7.3 step 5.6)."""

    code = "credential.kb_audience_mismatch"
    title = "Key binding audience mismatch"


class KbNonceMismatch(SdJwtInvalid):
    """The KB-JWT ``nonce`` is not the expected nonce (§7.3 step 5.6)."""

    code = "credential.kb_nonce_mismatch"
    title = "Key binding nonce mismatch"


class KbStale(SdJwtInvalid):
    """The KB-JWT ``iat`` lies outside the acceptable window (§7.3 step 5.5)."""

    code = "credential.kb_stale"
    title = "Key binding too old or in the future"


class SdHashMismatch(SdJwtInvalid):
    """The KB-JWT ``sd_hash`` does not cover the presented SD-JWT (§7.3 step 5.7)."""

    code = "credential.sd_hash_mismatch"
    title = "Key binding does not match the presentation"


class Expired(SdJwtInvalid):
    """The processed payload's ``exp`` has passed, beyond the leeway (§7.1 step 6)."""

    code = "credential.expired"
    title = "Credential expired"


class NotYetValid(SdJwtInvalid):
    """The processed payload's ``nbf`` or ``iat`` lies in the future, beyond the leeway."""

    code = "credential.not_yet_valid"
    title = "Credential not yet valid"


class ClaimsInvalid(ValidationError):
    """Claims given for issuance that an SD-JWT cannot carry: a reserved name (``_sd``,
    ``...``, ``_sd_alg``), a value JSON cannot represent, a non-string key."""

    code = "credential.claims_invalid"
    title = "Invalid claims"


class DisclosurePathInvalid(ValidationError):
    """A disclosure path that is malformed or names no claim (see ``sd_jwt`` for the syntax)."""

    code = "credential.sd_path_invalid"
    title = "Invalid disclosure path"
