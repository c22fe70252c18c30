"""IETF Token Status List tokens in CWT form (draft-ietf-oauth-status-list §5.2).

A Status List Token in CWT form is a COSE_Sign1 (``cose_sign1.py``) whose protected header
carries ``alg`` and ``typ`` (label 16, RFC 9596) = ``application/statuslist+cwt``, and whose
payload is a CWT claims set (RFC 8392) with:

* ``2`` (sub): REQUIRED, the URI of the status list, the ``uri`` a referenced token names;
* ``6`` (iat): REQUIRED, when it was issued;
* ``4`` (exp): RECOMMENDED, when it expires;
* ``5`` (nbf): the registered claim of RFC 8392 §3.1.5, honoured when present (§5.2 rule 3:
  a CWT "not valid in all other respects per" RFC 8392 is rejected);
* ``65534`` (ttl): RECOMMENDED, how long (seconds) it may be cached, a positive integer;
* ``65533`` (status_list): REQUIRED, the ``StatusList`` CBOR map of §4.3.

The JSON form (``statuslist+jwt``) is checked by ``verifier/status_fetch.py``; this is its
CBOR twin, with the same claim rules (``status_list_token.py``; §8.3: the ``sub`` must be
the URI the list was fetched for, an expired list is refused).  The token must be a
``COSE_Sign1_Tagged`` (tag 18), not inside the CWT tag 61 and not untagged (§5.2).  Pure:
time and the key are parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final

from credit_commons.core.errors import CommonsError
from credit_commons.formats.cbor import dumps, loads_unique
from credit_commons.formats.cose_sign1 import (
    COSE_TO_JOSE,
    KID,
    TYP,
    CoseSign1,
    parse_sign1,
    sign1,
)
from credit_commons.formats.jws import JwsSigner, SignatureVerifier
from credit_commons.formats.status_list import DEFAULT_MAX_DECOMPRESSED_BYTES, StatusList
from credit_commons.formats.status_list_token import StatusListTokenInvalid, check_claims

__all__ = [
    "CWT_MEDIA_TYPE",
    "StatusListCwtInvalid",
    "StatusListToken",
    "issue_status_list_cwt",
    "verify_status_list_cwt",
]

CWT_MEDIA_TYPE: Final = "application/statuslist+cwt"

# CWT claim keys (RFC 8392 §4; TSL §5.2 and its IANA registrations).
SUB: Final = 2
EXP: Final = 4
NBF: Final = 5
IAT: Final = 6
TTL: Final = 65534
STATUS_LIST: Final = 65533


class StatusListCwtInvalid(StatusListTokenInvalid):
    """A Status List Token in CWT form that is malformed, of another type, for another
    URI, expired or not yet valid (its signature failure is the key's
    ``SignatureInvalid``)."""


@dataclass(frozen=True, slots=True)
class StatusListToken:
    """A verified Status List Token: the list and its claims."""

    uri: str
    iat: float
    exp: float | None
    ttl: float | None
    status_list: StatusList


def issue_status_list_cwt(
    *,
    uri: str,
    status_list: StatusList,
    iat: int,
    exp: int,
    ttl: int,
    signer: JwsSigner,
    kid: str,
) -> bytes:
    """Sign ``status_list`` as a Status List Token in CWT form (§5.2): ``typ`` in the
    protected header, ``kid`` (its UTF-8 bytes) in the unprotected one, the claims in the
    order of the draft's example.  Raises what ``cose_sign1.sign1`` raises."""
    claims = {SUB: uri, IAT: iat, EXP: exp, TTL: ttl, STATUS_LIST: status_list.to_cbor_value()}
    return sign1({TYP: CWT_MEDIA_TYPE}, {KID: kid.encode()}, dumps(claims), signer)


def verify_status_list_cwt(
    data: bytes,
    key: SignatureVerifier | Callable[[CoseSign1], SignatureVerifier],
    *,
    uri: str,
    now: float,
    algs: Collection[int] = tuple(COSE_TO_JOSE),
    max_bytes: int | None = None,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> StatusListToken:
    """Verify a Status List Token in CWT form fetched from ``uri`` (§8.3).

    1. a ``COSE_Sign1_Tagged`` under the module rules of ``cose_sign1.py`` (``alg`` in
       ``algs``): §5.2 "MUST NOT be tagged with the CWT tag" and the COSE message "MUST
       either be the tagged COSE_Sign1_Tagged (18) or COSE_Mac0_Tagged (17)" (a MAC cannot
       be verified with an issuer's public key, so only the first is accepted);
    2. ``typ`` (protected) is ``application/statuslist+cwt`` (the CoAP Content-Format the
       draft also allows has no number yet);
    3. the signature verifies under ``key`` (or the key ``key(sign1)`` resolves from the
       parsed, not yet verified, token's headers);
    4. the payload is a CWT claims set: any valid CBOR map without a repeated key
       (``cbor.loads_unique``; floats, tags and indefinite lengths are the issuer's
       choice), whose registered claims pass ``status_list_token.check_claims`` (``sub``
       is ``uri``, ``iat`` present, ``exp`` after ``now``, ``nbf`` not after it, ``ttl``
       a positive unsigned integer);
    5. ``status_list`` is a valid ``StatusList`` (§4.3).

    Raises :class:`StatusListCwtInvalid` (steps 1-2, 4-5; the cause is the precise error)
    and what the key resolution and ``key.verify`` raise (step 3).
    """
    try:
        token = parse_sign1(data, algs=algs, max_bytes=max_bytes, require_tag18=True)  # 1
    except CommonsError as e:
        raise StatusListCwtInvalid(f"the status list is not a COSE_Sign1: {e.detail}") from e
    if token.protected.get(TYP) != CWT_MEDIA_TYPE:  # 2
        raise StatusListCwtInvalid(f"the status list typ is not {CWT_MEDIA_TYPE}")
    token.verify(key(token) if callable(key) else key)  # 3
    try:  # 4
        claims = loads_unique(token.payload, "the CWT claims")
    except CommonsError as e:
        raise StatusListCwtInvalid(f"the status list claims are not valid CBOR: {e.detail}") from e
    if not isinstance(claims, dict):
        raise StatusListCwtInvalid("the CWT claims set must be a map")
    try:
        times = check_claims(
            sub=claims.get(SUB),
            iat=claims.get(IAT),
            exp=claims.get(EXP),
            nbf=claims.get(NBF),
            ttl=claims.get(TTL),
            uri=uri,
            now=now,
            ttl_integer=True,
        )
        decoded = StatusList.from_cbor_value(  # 5
            claims.get(STATUS_LIST), max_decompressed_bytes=max_decompressed_bytes
        )
    except CommonsError as e:
        raise StatusListCwtInvalid(f"the status list is not acceptable: {e.detail}") from e
    return StatusListToken(uri, times.iat, times.exp, times.ttl, status_list=decoded)
