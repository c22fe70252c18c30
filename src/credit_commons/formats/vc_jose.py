"""W3C Verifiable Credentials Data Model v2.0 secured with JOSE (``application/vc+jwt``).

"Securing Verifiable Credentials using JOSE and COSE" (W3C Recommendation, 15 May 2025;
VC-JOSE-COSE) §3.1.1 secures a credential as a JWS whose payload **is** the credential:
the ``typ`` header SHOULD be ``vc+jwt`` and, when present, ``cty`` SHOULD be ``vc``; the JWT
claim names ``vc`` and ``vp`` MUST NOT be present (§3.1.3), and claims such as ``iss`` may
sit beside the credential's own members, whose values they must not contradict (``issuer``
and ``iss``).  The credential follows the Data Model v2.0 (VCDM 2.0): ``@context`` is an
ordered set whose first item is ``https://www.w3.org/ns/credentials/v2`` (§4.3), ``type``
contains ``VerifiableCredential`` (§4.5), ``issuer`` is a URL or an object with an ``id``
(§4.7), ``credentialSubject`` is present (§4.8), and its validity is ``validFrom`` /
``validUntil`` (§4.9, XML Schema ``dateTimeStamp``: a timezone is required).

A VCDM 1.1 credential (the ``vc`` claim of ``formats/vc_jwt.py``) is refused here, as a 2.0
credential is refused there: each version names the other's context only to refuse it.
Credential status entries are the Bitstring Status List's (``bitstring_status_list.py``).
Pure: time is a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import IntegrityError
from credit_commons.formats.jws import (
    JwsHeaderRefused,
    JwsSigner,
    SignatureVerifier,
    parse_compact,
    sign_compact,
)
from credit_commons.formats.vc_jwt import VcJwtExpired

__all__ = [
    "VCDM1_CONTEXT",
    "VCDM2_CONTEXT",
    "VC_CTY",
    "VC_JWT_TYP",
    "SecuredCredential",
    "VcJoseInvalid",
    "datetime_stamp",
    "is_vc_jose",
    "secure_credential",
    "verify_vc_jose",
]

VCDM2_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
VCDM1_CONTEXT: Final = "https://www.w3.org/2018/credentials/v1"
VC_JWT_TYP: Final = "vc+jwt"
VC_CTY: Final = "vc"

# XML Schema 1.1 dateTimeStamp (VCDM 2.0 §4.9): a date, a time and a required timezone.
_DATETIME_STAMP = re.compile(
    r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.ASCII
)
# VC-JOSE-COSE §3.1.3: these claims belong to VCDM 1.1 JWTs and MUST NOT be present.
_FORBIDDEN_CLAIMS: Final = ("vc", "vp")


class VcJoseInvalid(IntegrityError):
    """A ``vc+jwt`` that is malformed, not a VCDM 2.0 credential, or whose signature does
    not verify (the signature failure itself is the key's ``SignatureInvalid``)."""

    code = "credential.vc_jose_invalid"
    title = "Invalid VC-JOSE credential"


@dataclass(frozen=True, slots=True)
class SecuredCredential:
    """A verified ``vc+jwt``: its JOSE header and the credential (the payload), whose shape,
    contexts, issuer and validity period passed :func:`verify_vc_jose`."""

    header: JsonObject
    credential: JsonObject
    issuer: str
    types: tuple[str, ...]

    @property
    def subject(self) -> JsonObject:
        """The credential's ``credentialSubject`` object."""
        subject: JsonObject = self.credential["credentialSubject"]
        return subject


def datetime_stamp(moment: datetime) -> str:
    """``moment`` as an XML Schema ``dateTimeStamp`` in UTC, to the second (``...Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def secure_credential(
    credential: Mapping[str, Any], signer: JwsSigner, *, kid: str, iat: int | None = None
) -> str:
    """Sign ``credential`` as a ``vc+jwt`` (VC-JOSE-COSE §3.1.1): header ``typ: vc+jwt``,
    ``cty: vc`` and ``kid``; the payload is the credential with ``iss`` (the issuer's id,
    so a JWT verifier finds the key as for any JWT) and, when given, ``iat``.

    Raises :class:`VcJoseInvalid` for a credential :func:`verify_vc_jose` would refuse by
    its shape (checked before signing, so the platform never signs one), and what
    ``signer.sign`` raises.
    """
    issuer = _check_credential(credential)
    payload: dict[str, Any] = {**credential, "iss": issuer}
    if iat is not None:
        payload["iat"] = iat
    return sign_compact({"typ": VC_JWT_TYP, "cty": VC_CTY, "kid": kid}, payload, signer)


def is_vc_jose(header: Mapping[str, Any]) -> bool:
    """Whether a JOSE header declares a ``vc+jwt`` (``typ`` ``vc+jwt`` or its full media
    type ``application/vc+jwt``, RFC 7515 §4.1.9)."""
    return header.get("typ") in (VC_JWT_TYP, f"application/{VC_JWT_TYP}")


def verify_vc_jose(
    token: str,
    key: SignatureVerifier,
    *,
    algs: Collection[str],
    now: int,
    leeway: int = 60,
) -> SecuredCredential:
    """Verify a ``vc+jwt``; returns the credential with its header.

    1. A compact JWS with ``alg`` in ``algs`` and no embedded key (RFC 7515, RFC 8725 §3.10);
    2. ``typ`` is ``vc+jwt`` and ``cty``, when present, ``vc`` (VC-JOSE-COSE §3.1.1);
    3. the signature verifies under ``key`` (what ``key.verify`` raises);
    4. no ``vc`` or ``vp`` claim (§3.1.3);
    5. the credential's shape (VCDM 2.0 §4.3, §4.5, §4.7, §4.8): the v2 context first and
       no v1 context, ``VerifiableCredential`` among the types, an issuer URL that ``iss``
       (when present) repeats, and one subject object (VCDM 2.0 allows a list of several;
       this platform issues and accepts one);
    6. ``validFrom`` <= now <= ``validUntil`` (§4.9) and the JWT's ``nbf``/``exp`` when
       present, each with ``leeway`` seconds.

    Raises :class:`VcJoseInvalid` (steps 1-2, 4-5), ``VcJwtExpired`` (step 6), and what
    ``key.verify`` raises (step 3).
    """
    try:
        jws = parse_compact(token, algs=algs, decode_payload=False)
    except JwsHeaderRefused as e:  # an embedded key or a crit extension
        raise VcJoseInvalid("not a vc+jwt header") from e
    header = jws.header
    if not is_vc_jose(header) or header.get("cty", VC_CTY) not in (VC_CTY, "application/vc"):
        raise VcJoseInvalid("not a vc+jwt header")
    jws.verify(key)
    payload = jws.payload
    if any(claim in payload for claim in _FORBIDDEN_CLAIMS):
        raise VcJoseInvalid("a vc+jwt carries the credential as its payload, not in vc/vp")
    issuer = _check_credential(payload)
    if "iss" in payload and payload["iss"] != issuer:
        raise VcJoseInvalid("iss and the credential's issuer differ")
    _check_validity(payload, now, leeway)
    types = payload["type"]
    return SecuredCredential(
        header=header,
        credential=payload,
        issuer=issuer,
        types=(types,) if isinstance(types, str) else tuple(types),
    )


# -- the credential's shape ------------------------------------------------------------------


def _check_credential(credential: Mapping[str, Any]) -> str:
    """Step 5: VCDM 2.0's required members; returns the issuer's id."""
    context = credential.get("@context")
    # VCDM 2.0 §4.3: an ordered set whose first item is the v2 context URL.
    if not isinstance(context, list) or not context or context[0] != VCDM2_CONTEXT:
        raise VcJoseInvalid("the first @context must be " + VCDM2_CONTEXT)
    if VCDM1_CONTEXT in context:
        raise VcJoseInvalid("a VCDM 2.0 credential must not carry the VCDM 1.1 context")
    # §4.5: type is a term or a set of terms, and a credential's includes this one.
    types = credential.get("type")
    listed = [types] if isinstance(types, str) else types
    if (
        not isinstance(listed, list)
        or not all(isinstance(t, str) for t in listed)
        or "VerifiableCredential" not in listed
    ):
        raise VcJoseInvalid("type must include VerifiableCredential")
    issuer = _issuer_id(credential.get("issuer"))
    # §4.8: one or more subjects; this platform's credentials have exactly one.
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict) or not subject:
        raise VcJoseInvalid("credentialSubject must be an object")
    for member in ("validFrom", "validUntil"):
        if member in credential:
            _parse_datetime_stamp(credential[member], member)
    return issuer


def _issuer_id(issuer: object) -> str:
    # VCDM 2.0 §4.7: a URL, or an object whose id is one.
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    if not isinstance(issuer, str) or ":" not in issuer:
        raise VcJoseInvalid("issuer must be a URL or an object with an id URL")
    return issuer


def _parse_datetime_stamp(value: object, member: str) -> datetime:
    if not isinstance(value, str) or not _DATETIME_STAMP.match(value):
        raise VcJoseInvalid(f"{member} must be an XML Schema dateTimeStamp")
    try:
        return datetime.fromisoformat(value)
    except ValueError as e:  # a well-formed string naming no real moment (month 13)
        raise VcJoseInvalid(f"{member} must be an XML Schema dateTimeStamp") from e


def _check_validity(payload: Mapping[str, Any], now: int, leeway: int) -> None:
    """Step 6: the data's validity period (VCDM 2.0 §4.9), then the JWT's own claims."""
    start = end = None
    if "validFrom" in payload:
        start = _parse_datetime_stamp(payload["validFrom"], "validFrom").timestamp()
    if "validUntil" in payload:
        end = _parse_datetime_stamp(payload["validUntil"], "validUntil").timestamp()
    if start is not None and end is not None and end < start:
        raise VcJoseInvalid("validUntil is before validFrom")
    for claim in ("nbf", "exp"):
        value = payload.get(claim)
        if claim in payload and (isinstance(value, bool) or not isinstance(value, int)):
            raise VcJoseInvalid(f"{claim} must be a NumericDate")
    nbf, exp = payload.get("nbf"), payload.get("exp")
    if (start is not None and start - leeway > now) or (
        isinstance(nbf, int) and nbf - leeway > now
    ):
        raise VcJwtExpired("the credential is not valid yet")
    if (end is not None and end + leeway < now) or (isinstance(exp, int) and exp + leeway < now):
        raise VcJwtExpired("the credential has expired")
