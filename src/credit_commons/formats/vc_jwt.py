"""W3C Verifiable Credentials as JWTs (``jwt_vc_json``, OID4VCI 1.0 Appendix A.1.1).

The credential is a JWS (``typ: JWT``) whose payload carries the registered claims (``iss``,
``sub`` = the holder's did:key, ``iat``/``nbf``, ``exp``, ``jti``) and a ``vc`` object with
the VC Data Model context, the types, ``credentialSubject`` (the claims) and a W3C
``BitstringStatusListEntry`` (revocation, MSB-first lists).  Pure: time is a parameter.
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
    """Sign a ``jwt_vc_json`` credential."""
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
    if (
        not isinstance(vc, dict)
        or _CONTEXT not in vc.get("@context", [])
        or "VerifiableCredential" not in vc.get("type", [])
    ):
        raise VcJwtInvalid("the payload has no W3C vc object")
    exp, nbf = payload.get("exp"), payload.get("nbf", payload.get("iat"))
    if not isinstance(exp, int) or exp + leeway < now:
        raise VcJwtExpired("the credential has expired")
    if isinstance(nbf, int) and nbf - leeway > now:
        raise VcJwtExpired("the credential is not valid yet")
    return payload
