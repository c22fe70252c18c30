"""This platform's W3C credentials checked alone (``/v1/credentials/verify``): a VCDM 1.1
``jwt_vc_json`` — step 3 (the compact JWS, its issuer key, signature, validity and type)
and step 9 (the bitstring status) — or, handed over after parsing, a VCDM 2.0 ``vc+jwt``
(:func:`~credit_commons.verifier.vcdm2.verify_vc_jose_credential`, whose step 9 checks the
entry against the published Bitstring Status List credential, W3C §3.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from credit_commons.formats.jws import CompactJws, parse_compact
from credit_commons.formats.status_list import TokenStatus
from credit_commons.formats.vc_jose import is_vc_jose
from credit_commons.formats.vc_jwt import verify_vc_jwt
from credit_commons.issuer import (
    ISSUER_KEY,
    StatusKind,
    StatusRef,
    get_status,
    is_own_issuer,
    own_status_list_id,
)
from credit_commons.issuer import service as catalogue_service
from credit_commons.keys import ACCEPTED_ALGS, KeyNotFound, PublicKey
from credit_commons.runtime import Runtime
from credit_commons.verifier.schemas import VcJwtVerified
from credit_commons.verifier.sd_jwt_vc import CredentialRevoked, UnknownIssuerKey
from credit_commons.verifier.vcdm2 import verify_vc_jose_credential

__all__ = ["own_issuer_keys", "vc_jwt_status", "verify_vc_jwt_credential"]


def verify_vc_jwt_credential(session: Session, rt: Runtime, token: str) -> VcJwtVerified:
    """Verify one of this issuer's W3C credentials: a VCDM 1.1 ``jwt_vc_json`` — step 3
    (signature by the issuer key named by ``kid``, validity period, type) and step 9 (its
    bitstring status) — or a VCDM 2.0 ``vc+jwt`` (``verifier/vcdm2.py``, which raises its
    own errors besides).

    Raises ``VcJwtInvalid``/``VcJwtExpired``, :class:`UnknownIssuerKey` or
    :class:`CredentialRevoked`.
    """
    keys = own_issuer_keys(session, rt)
    # Step 3: the kid and iss only pick the key (verify_vc_jwt refuses embedded keys), then
    # the signature, the validity period and the type.
    unverified = parse_compact(token, algs=ACCEPTED_ALGS, refused_headers=())
    if is_vc_jose(unverified.header):  # W3C VCDM 2.0: its steps are in verifier/vcdm2.py
        return verify_vc_jose_credential(session, rt, token)
    key = _vc_jwt_issuer_key(session, rt, keys, unverified)
    payload = verify_vc_jwt(token, key, algs=ACCEPTED_ALGS, now=int(rt.clock.now().timestamp()))
    vc = payload["vc"]
    _vc_jwt_type(session, rt, vc)
    vc_jwt_status(session, rt, vc)  # step 9
    subject = {k: v for k, v in vc.get("credentialSubject", {}).items() if k != "id"}
    return VcJwtVerified(
        valid=True,
        type=[t for t in vc["type"] if t != "VerifiableCredential"],
        holder=payload.get("sub"),
        claims=subject,
    )


def _vc_jwt_issuer_key(
    session: Session, rt: Runtime, keys: Mapping[str, PublicKey], unverified: CompactJws
) -> PublicKey:
    key = keys.get(str(unverified.header.get("kid")))
    if key is None or not is_own_issuer(session, rt, unverified.payload.get("iss")):
        raise UnknownIssuerKey("the credential's issuer key is not known here")
    return key


def _vc_jwt_type(session: Session, rt: Runtime, vc: Mapping[str, Any]) -> None:
    types = {t.name for t in catalogue_service.list_types(session, rt)}
    if not types & set(vc.get("type", [])):
        raise UnknownIssuerKey("unknown credential type")


def vc_jwt_status(session: Session, rt: Runtime, vc: Mapping[str, Any]) -> None:
    """Step 9 for a VCDM 1.1 credential of this issuer: its bitstring entry, read from the
    database.  Raises :class:`UnknownIssuerKey` or :class:`CredentialRevoked`."""
    entry = vc.get("credentialStatus", {})
    uri, index = entry.get("statusListCredential"), entry.get("statusListIndex")
    list_id = own_status_list_id(session, rt, uri)
    if list_id is None or not (str(index).isascii() and str(index).isdigit()):
        raise UnknownIssuerKey("the credential's status list is not one of this issuer's")
    current = get_status(session, StatusRef(list_id, int(index), StatusKind.BITSTRING))
    if current is TokenStatus.INVALID:
        raise CredentialRevoked("the credential was revoked")


def own_issuer_keys(session: Session, rt: Runtime) -> dict[str, PublicKey]:
    """Every version of this platform's issuer key, by ``kid`` (none before the first
    issuance).  Raises nothing but database errors."""
    # Every version of this platform's issuer key, by kid (none before the first issuance).
    try:
        versions = rt.key_store.versions(session, ISSUER_KEY)
    except KeyNotFound:
        return {}
    return {v.kid: v.public_key for v in versions}
