"""IETF Token Status List tokens in CWT form (draft-ietf-oauth-status-list §5.2).

A Status List Token in CWT form is a COSE_Sign1 (``cose_sign1.py``) whose protected header
carries ``alg`` and ``typ`` (label 16, RFC 9596) = ``application/statuslist+cwt``, and whose
payload is a CWT claims set (RFC 8392) with:

* ``2`` (sub): REQUIRED, the URI of the status list, the ``uri`` a referenced token names;
* ``6`` (iat): REQUIRED, when it was issued;
* ``4`` (exp): RECOMMENDED, when it expires;
* ``65534`` (ttl): RECOMMENDED, how long (seconds) it may be cached, a positive integer;
* ``65533`` (status_list): REQUIRED, the ``StatusList`` CBOR map of §4.3.

The JSON form (``statuslist+jwt``) is checked by ``verifier/status_fetch.py``; this is its
CBOR twin, with the same rules (§8.3: the ``sub`` must be the URI the list was fetched
for, an expired list is refused).  Pure: time and the key are parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from credit_commons.core.errors import CommonsError, IntegrityError
from credit_commons.formats.cbor import dumps, loads_strict
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
IAT: Final = 6
TTL: Final = 65534
STATUS_LIST: Final = 65533


class StatusListCwtInvalid(IntegrityError):
    """A Status List Token in CWT form that is malformed, of another type, for another
    URI or expired (its signature failure is the key's ``SignatureInvalid``)."""

    code = "credential.status_list_invalid"
    title = "Status list not acceptable"


@dataclass(frozen=True, slots=True)
class StatusListToken:
    """A verified Status List Token: the list and its claims."""

    uri: str
    iat: int
    exp: int | None
    ttl: int | None
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

    1. a COSE_Sign1 under the module rules of ``cose_sign1.py`` (``alg`` in ``algs``);
    2. ``typ`` (protected) is ``application/statuslist+cwt``;
    3. the signature verifies under ``key`` (or the key ``key(sign1)`` resolves from the
       parsed, not yet verified, token's headers);
    4. the payload is a CWT claims set whose ``sub`` is ``uri``, with an integer ``iat``,
       ``exp`` (when present) after ``now`` and ``ttl`` (when present) positive;
    5. ``status_list`` is a valid ``StatusList`` (§4.3).

    Raises :class:`StatusListCwtInvalid` (steps 1-2, 4-5; the cause is the precise error)
    and what the key resolution and ``key.verify`` raise (step 3).
    """
    try:
        token = parse_sign1(data, algs=algs, max_bytes=max_bytes)  # 1
    except CommonsError as e:
        raise StatusListCwtInvalid(f"the status list is not a COSE_Sign1: {e.detail}") from e
    if token.protected.get(TYP) != CWT_MEDIA_TYPE:  # 2
        raise StatusListCwtInvalid(f"the status list typ is not {CWT_MEDIA_TYPE}")
    token.verify(key(token) if callable(key) else key)  # 3
    try:
        claims = loads_strict(token.payload, "the CWT claims")
    except CommonsError as e:
        raise StatusListCwtInvalid("the status list claims are not CBOR") from e
    if not isinstance(claims, dict):
        raise StatusListCwtInvalid("the CWT claims set must be a map")
    checked = _claims(claims, uri=uri, now=now)  # 4
    try:  # 5
        decoded = StatusList.from_cbor_value(
            claims.get(STATUS_LIST), max_decompressed_bytes=max_decompressed_bytes
        )
    except CommonsError as e:
        raise StatusListCwtInvalid("the status list is malformed") from e
    return StatusListToken(uri, *checked, status_list=decoded)


def _unsigned(claims: Mapping[Any, Any], key: int) -> int | None:
    value = claims.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise StatusListCwtInvalid(f"CWT claim {key} must be an unsigned integer")
    return value


def _claims(
    claims: Mapping[Any, Any], *, uri: str, now: float
) -> tuple[int, int | None, int | None]:
    # Step 4: the registered claims; returns iat, exp and ttl.
    if claims.get(SUB) != uri:
        raise StatusListCwtInvalid("the status list was issued for another URI")
    iat, exp, ttl = _unsigned(claims, IAT), _unsigned(claims, EXP), _unsigned(claims, TTL)
    if iat is None:
        raise StatusListCwtInvalid("the status list has no iat")
    if exp is not None and exp <= now:
        raise StatusListCwtInvalid("the status list has expired")
    if ttl == 0:
        raise StatusListCwtInvalid("ttl must be a positive integer")
    return iat, exp, ttl
