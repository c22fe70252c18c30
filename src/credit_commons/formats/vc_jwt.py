"""W3C Verifiable Credentials Data Model 1.1 as JWTs (``jwt_vc_json``, OID4VCI 1.0
Appendix A.1.1, whose ``VC_DATA`` is the Data Model 1.1).

The credential is a JWS (``typ: JWT``) whose payload carries the registered claims (``iss``,
``sub`` = the holder's did:key, ``iat``/``nbf``, ``exp``, ``jti``) and a ``vc`` object with
the VC Data Model 1.1 context first (VCDM 1.1 §4.1), the types and ``credentialSubject``.

This platform no longer issues these: the ``BitstringStatusListEntry`` its 1.1 credentials
carried is defined by W3C Bitstring Status List v1.0 for Data Model 2.0 credentials only,
so W3C credentials are now VCDM 2.0 ``vc+jwt`` (``vc_jose.py``).  :func:`verify_vc_jwt`
stays, so that the 1.1 credentials already issued keep verifying; :func:`issue_vc_jwt`
stays for the tests that make such old credentials.  A 2.0 context in a 1.1 credential is
refused, as ``vc_jose.py`` refuses the 1.1 context.  Pure: time is a parameter.
"""

from __future__ import annotations

from collections.abc import Collection

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import IntegrityError
from credit_commons.formats.jws import (
    JwsHeaderRefused,
    JwsSigner,
    SignatureVerifier,
    parse_compact,
    sign_compact,
)

__all__ = ["VcJwtExpired", "VcJwtInvalid", "issue_vc_jwt", "verify_vc_jwt"]

_CONTEXT = "https://www.w3.org/2018/credentials/v1"
_CONTEXT_V2 = "https://www.w3.org/ns/credentials/v2"  # vc_jose.VCDM2_CONTEXT, refused here


class VcJwtInvalid(IntegrityError):
    """A VC-JWT that is malformed or whose signature does not verify."""

    code = "credential.vc_jwt_invalid"
    title = "Invalid VC-JWT"


class VcJwtExpired(IntegrityError):
    """A VC-JWT outside its validity period."""

    code = "credential.expired"
    title = "Credential expired"


def issue_vc_jwt(
    *,
    type_name: str,
    claims: JsonObject,
    issuer: str,
    holder_did: str,
    credential_id: str,
    status_uri: str,
    status_index: int,
    iat: int,
    exp: int,
    signer: JwsSigner,
    kid: str,
) -> str:
    """Sign a VCDM 1.1 ``jwt_vc_json`` credential (no longer issued by the platform: the
    tests use it to make the credentials issued before VCDM 2.0)."""
    payload = {
        "iss": issuer,
        "sub": holder_did,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "jti": credential_id,
        "vc": {
            "@context": [_CONTEXT],
            "type": ["VerifiableCredential", type_name],
            "credentialSubject": {"id": holder_did, **claims},
            "credentialStatus": {
                "id": f"{status_uri}#{status_index}",
                "type": "BitstringStatusListEntry",
                "statusPurpose": "revocation",
                "statusListIndex": str(status_index),
                "statusListCredential": status_uri,
            },
        },
    }
    return sign_compact({"typ": "JWT", "kid": kid}, payload, signer)


def verify_vc_jwt(
    token: str,
    key: SignatureVerifier,
    *,
    algs: Collection[str],
    now: int,
    leeway: int = 60,
) -> JsonObject:
    """Verify the signature (``alg`` in ``algs``), ``typ``, shape and validity period;
    returns the payload.

    Raises :class:`VcJwtInvalid` or :class:`VcJwtExpired`, the parser's
    :class:`~credit_commons.formats.jws.JwsInvalid` for a token that is no compact JWS or
    embeds a key, and what ``key.verify`` raises.
    """
    try:
        jws = parse_compact(token, algs=algs)
    except JwsHeaderRefused as e:  # an embedded key or a crit extension
        raise VcJwtInvalid("not a jwt_vc_json credential header") from e
    if jws.header.get("typ") != "JWT":
        raise VcJwtInvalid("not a jwt_vc_json credential header")
    jws.verify(key)
    payload = jws.payload
    vc = payload.get("vc")
    context = vc.get("@context") if isinstance(vc, dict) else None
    # VCDM 1.1 §4.1: the first context is the 1.1 one; a 2.0 context makes it no 1.1 credential.
    if (
        not isinstance(vc, dict)
        or not isinstance(context, list)
        or not context
        or context[0] != _CONTEXT
        or _CONTEXT_V2 in context
        or "VerifiableCredential" not in vc.get("type", [])
    ):
        raise VcJwtInvalid("the payload has no W3C VCDM 1.1 vc object")
    exp, nbf = payload.get("exp"), payload.get("nbf", payload.get("iat"))
    # VCDM 1.1 §6.3.1: exp stands for expirationDate, which a credential may leave out (and
    # RFC 7519 §4.1.4 makes optional); when present it is a NumericDate.
    if exp is not None and (isinstance(exp, bool) or not isinstance(exp, int | float)):
        raise VcJwtInvalid("exp is not a NumericDate")
    if exp is not None and exp + leeway < now:
        raise VcJwtExpired("the credential has expired")
    if isinstance(nbf, int) and nbf - leeway > now:
        raise VcJwtExpired("the credential is not valid yet")
    return payload
