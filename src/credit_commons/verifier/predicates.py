"""Verifying predicate attestations (seed 003 §4.3): a relying party's check of the signed
yes/no answers the identity domain issues (:mod:`credit_commons.identity.predicates`).

The token is parsed by the platform's one compact-JWS module (``formats/jws.py``: strict
base64url, unique JSON member names, the alg allow-list, ``crit``), with explicit typing and
the attestation's own header rules checked here; its claim set must be exactly an
:class:`~credit_commons.identity.predicates.Attestation`.  The steps are numbered in
:func:`verify_attestation`; each failure is its own :class:`AttestationInvalid` subclass.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Final

from pydantic import ValidationError as PydanticValidationError

from credit_commons.core.clock import utc
from credit_commons.core.errors import IntegrityError
from credit_commons.formats.jws import (
    JwsAlgorithmRefused,
    JwsCritNotUnderstood,
    JwsHeaderRefused,
    JwsInvalid,
    parse_compact,
)
from credit_commons.identity import ATTESTATION_TYP, Attestation
from credit_commons.keys import ACCEPTED_ALGS, PublicKey, check_alg
from credit_commons.verifier import predicate_errors as errors
from credit_commons.verifier.predicate_errors import AttestationMalformed

__all__ = ["verify_attestation"]

_MAX_TOKEN_CHARS: Final = 16_384
_HEADER_MEMBERS: Final = frozenset({"alg", "typ", "kid"})
_KEY_HEADERS: Final = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256"})


def verify_attestation(
    token: str,
    *,
    public_key: PublicKey,
    audience: str,
    nonce: str,
    now: datetime,
    leeway: timedelta = timedelta(seconds=30),
) -> Attestation:
    """Verify a predicate attestation; return it only if every step passes.

    Raises :class:`AttestationMalformed`, :class:`AttestationSignatureInvalid`,
    :class:`AttestationExpired`, :class:`AttestationNotYetValid`,
    :class:`AttestationAudienceMismatch` or :class:`AttestationNonceMismatch` (all
    :class:`AttestationInvalid`), for the first step that fails.
    """
    # Steps 1-2 (RFC 7515 §7.1, §5.2 steps 1-5, §4): a compact JWS of strict base64url and
    # I-JSON (unique member names), no crit, and keys never taken from the token itself
    # (formats/jws.py); explicit typing (RFC 8725 §3.11) and only alg, typ and kid.
    try:
        jws = parse_compact(
            token,
            algs=ACCEPTED_ALGS,
            refused_headers=_KEY_HEADERS,
            max_chars=_MAX_TOKEN_CHARS,
            decode_payload=False,  # read only once the signature verified (step 5)
        )
    except JwsAlgorithmRefused as e:
        raise errors.AttestationSignatureInvalid("alg is not accepted for this key") from e
    except JwsCritNotUnderstood as e:
        raise AttestationMalformed("the header has a crit extension") from e
    except JwsHeaderRefused as e:
        raise AttestationMalformed("the header carries a key or key reference") from e
    except JwsInvalid as e:
        raise AttestationMalformed(f"not a compact JWS of JSON objects: {e}") from e
    header = jws.header
    if not set(header) <= _HEADER_MEMBERS or header.get("typ") != ATTESTATION_TYP:
        raise AttestationMalformed(f"the header must be alg, typ={ATTESTATION_TYP} and kid")

    # Step 3 (RFC 7515 §5.2 step 8, RFC 8725 §3.1): the alg (on the allow-list, step 1)
    # belongs to the key's type, so key-type confusion is refused before any check.
    try:
        check_alg(jws.alg, public_key.key_type)
    except IntegrityError as e:
        raise errors.AttestationSignatureInvalid("alg is not accepted for this key") from e

    # Step 4 (RFC 7515 §5.2 steps 6-8): the signature over ASCII(header "." payload).
    try:
        jws.verify(public_key)
    except IntegrityError as e:
        raise errors.AttestationSignatureInvalid() from e

    # Step 5 (RFC 7519 §7.2 steps 9-10): the claim set has exactly the attestation's members,
    # and they agree with each other.
    try:
        claims = Attestation.model_validate(jws.payload)
    except JwsInvalid as e:
        raise AttestationMalformed("the payload is not canonical base64url of JSON") from e
    except PydanticValidationError as e:
        raise AttestationMalformed("the claim set is not a predicate attestation") from e

    # Step 6 (RFC 7519 §4.1.4, §4.1.6): the time window, with leeway for clock skew.
    current, slack = utc(now).timestamp(), leeway.total_seconds()
    if current >= claims.exp + slack:
        raise errors.AttestationExpired()
    if claims.iat > current + slack:
        raise errors.AttestationNotYetValid()

    # Step 7 (RFC 7519 §4.1.3): issued to this audience.
    if claims.aud != audience:
        raise errors.AttestationAudienceMismatch()

    # Step 8: an answer to this request, not a replay of another.
    if not hmac.compare_digest(claims.nonce.encode("utf-8"), nonce.encode("utf-8")):
        raise errors.AttestationNonceMismatch()

    return claims
