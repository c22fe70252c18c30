"""Verifiable Presentations as JWTs (``jwt_vc_json``, OpenID4VP 1.0 Appendix B.1), pure.

A W3C credential is presented to an OpenID4VP verifier inside a Verifiable Presentation
that the holder signs: VCDM 1.1 §6.3.1 encodes it as a JWT whose ``vp`` claim is the
presentation (its ``@context`` starting with the VCDM 1.1 context, its ``type`` including
``VerifiablePresentation``, its ``verifiableCredential`` the credentials, each a compact
JWS here) and whose ``iss`` is the holder.  OpenID4VP 1.0 Appendix B.1.3.1.5 binds it to
the request: "the nonce claim MUST be the value of nonce from the Authorization Request"
and "the aud claim MUST be the value of the Client Identifier" (prefix included).

The credential inside may be a VCDM 1.1 ``jwt_vc_json`` (``formats/vc_jwt.py``) or a VCDM
2.0 ``vc+jwt`` (``formats/vc_jose.py``): OpenID4VP 1.0 has no Credential Format
Identifier of its own for the latter, and this platform presents it under ``jwt_vc_json``
in the same VP-JWT (docs/verifier.md, "W3C credentials").  One credential per
presentation: each DCQL Credential Query answer is one credential (§8.1).

1. :func:`parse_vp_jwt` — the shape, before any signature or key lookup: a compact JWS
   (``alg`` allowed, no embedded key), ``typ`` ``JWT`` when present, the ``vp`` object and
   its one credential, ``iss`` a DID, ``kid`` a DID URL of it;
2. :func:`verify_vp_jwt` — the holder's signature under the key the caller resolved for
   ``kid``, then ``nonce`` and ``aud`` (each its own error: a presentation made for another
   request), and the time claims (``iat`` not in the future nor older than ``max_age``,
   ``exp``/``nbf`` when present).

Verification raises; a return means every check passed.  Time is a parameter.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Final

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError, IntegrityError
from credit_commons.formats.jws import CompactJws, JwsInvalid, SignatureVerifier, parse_compact

__all__ = [
    "VCDM1_CONTEXT",
    "UnverifiedVp",
    "VpAudienceMismatch",
    "VpJwtInvalid",
    "VpNonceMismatch",
    "VpSignatureInvalid",
    "VpStale",
    "parse_vp_jwt",
    "verify_vp_jwt",
]

VCDM1_CONTEXT: Final = "https://www.w3.org/2018/credentials/v1"
#: A presentation is at most this long (a credential inside is a few kilobytes).
MAX_VP_CHARS: Final = 64 * 1024


class VpJwtInvalid(IntegrityError):
    """A VP-JWT that is malformed: not a compact JWS, not a presentation, or not of one
    credential and a DID holder."""

    code = "presentation.vp_jwt_invalid"
    title = "Invalid VP-JWT"


class VpSignatureInvalid(VpJwtInvalid):
    """The holder's signature over the presentation does not verify."""

    code = "presentation.signature_invalid"
    title = "Presentation signature invalid"


class VpNonceMismatch(VpJwtInvalid):
    """The presentation's ``nonce`` is not the request's (§B.1.3.1.5)."""

    code = "presentation.nonce_mismatch"
    title = "Presentation nonce mismatch"


class VpAudienceMismatch(VpJwtInvalid):
    """The presentation's ``aud`` is not the verifier's client identifier (§B.1.3.1.5)."""

    code = "presentation.audience_mismatch"
    title = "Presentation audience mismatch"


class VpStale(VpJwtInvalid):
    """The presentation was made too long ago, in the future, or is expired."""

    code = "presentation.stale"
    title = "Presentation not fresh"


@dataclass(frozen=True, slots=True)
class UnverifiedVp:
    """A VP-JWT whose shape passed :func:`parse_vp_jwt`, its signature not yet checked:
    the holder (``iss``, a DID), the DID URL of the key that signed it (``kid``), and the
    one credential it carries (a compact JWS)."""

    jws: CompactJws = field(repr=False)
    holder: str
    kid: str
    credential: str
    payload: JsonObject


def parse_vp_jwt(text: object, *, algs: Collection[str]) -> UnverifiedVp:
    """Step 1 of the module: the shape of a VP-JWT.  Raises :class:`VpJwtInvalid`."""
    try:
        jws = parse_compact(text, algs=algs, max_chars=MAX_VP_CHARS)
    except JwsInvalid as e:
        raise VpJwtInvalid(f"not a VP-JWT: {e.detail}") from e
    header, payload = jws.header, jws.payload
    if header.get("typ", "JWT") != "JWT":  # VCDM 1.1 §6.3.1: a JWT
        raise VpJwtInvalid("a VP-JWT's typ is JWT")
    vp = payload.get("vp")
    if not isinstance(vp, dict):
        raise VpJwtInvalid("the payload has no vp object")
    context, types = vp.get("@context"), vp.get("type")
    if not isinstance(context, list) or not context or context[0] != VCDM1_CONTEXT:
        raise VpJwtInvalid("the presentation's first @context must be " + VCDM1_CONTEXT)
    listed = [types] if isinstance(types, str) else types
    if not isinstance(listed, list) or "VerifiablePresentation" not in listed:
        raise VpJwtInvalid("the presentation's type must include VerifiablePresentation")
    credentials = vp.get("verifiableCredential")
    if (
        not isinstance(credentials, list)
        or len(credentials) != 1
        or not isinstance(credentials[0], str)
    ):
        raise VpJwtInvalid("a presentation here carries exactly one credential, a JWT")
    holder, kid = payload.get("iss"), header.get("kid")
    if not isinstance(holder, str) or not holder.startswith("did:"):
        raise VpJwtInvalid("the presentation's iss must be the holder's DID")
    if not isinstance(kid, str) or kid.split("#", 1)[0] not in ("", holder) or "#" not in kid:
        raise VpJwtInvalid("kid must be a DID URL of the holder's DID")
    if vp.get("holder", holder) != holder:
        raise VpJwtInvalid("the presentation's holder and iss differ")
    return UnverifiedVp(jws, holder, kid, credentials[0], payload)


def verify_vp_jwt(
    vp: UnverifiedVp,
    key: SignatureVerifier,
    *,
    audience: str | None,
    nonce: str | None,
    now: int,
    leeway: int = 60,
    max_age: int = 300,
) -> None:
    """Step 2 of the module: the holder's signature under ``key`` (the key ``vp.kid`` names,
    resolved by the caller from the holder's DID document), then ``nonce`` and ``aud``
    against the request (§B.1.3.1.5), then ``iat`` (required: no older than ``max_age``
    seconds, not in the future), ``nbf`` and ``exp`` with ``leeway``.

    Raises :class:`VpSignatureInvalid`, :class:`VpNonceMismatch`,
    :class:`VpAudienceMismatch`, :class:`VpStale`.
    """
    try:
        vp.jws.verify(key)
    except CommonsError as e:  # SignatureInvalid, AlgorithmNotAllowed, KeyTypeMismatch
        raise VpSignatureInvalid("the holder's signature does not verify") from e
    payload = vp.payload
    if nonce is None or payload.get("nonce") != nonce:
        raise VpNonceMismatch("the presentation is bound to another nonce")
    aud = payload.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience is None or audience not in audiences:
        raise VpAudienceMismatch("the presentation is for another verifier")
    iat, nbf, exp = payload.get("iat"), payload.get("nbf"), payload.get("exp")
    for value in (iat, nbf, exp):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise VpJwtInvalid("iat, nbf and exp are NumericDates")
    if not isinstance(iat, int) or iat - leeway > now or iat + max_age < now:
        raise VpStale("the presentation was not made just now")
    if (isinstance(nbf, int) and nbf - leeway > now) or (
        isinstance(exp, int) and exp + leeway < now
    ):
        raise VpStale("the presentation is outside its validity period")
