"""Verifying SD-JWT VCs, as presentations with Key Binding (issue 5, item 4) or as
issuer-signed credentials without it (issue 14, item 2): this platform's own and trusted
issuers'.

The SD-JWT checks are ``sd_jwt_verify.verify`` (RFC 9901 §7: issuer signature with the
algorithm allow-list, every disclosure rule, key binding with audience, nonce, freshness
and ``sd_hash``, ``exp``/``nbf``/``iat`` with leeway).  Then:

1. the issuer key: for this platform (``iss`` is its public URL) by ``kid`` among its own
   keys (every version verifies); for another ``iss``, only when the issuer is on the trust
   list (:mod:`~credit_commons.verifier.trust`, else :class:`UntrustedIssuer`), resolved
   through its metadata or DID document (:mod:`~credit_commons.verifier.foreign`);
2. ``typ`` must be ``dc+sd-jwt``; the ``vct`` of this platform's credentials must be a type
   of its catalogue, a foreign one a string (``sd_jwt_vc.py``, shared with the lender
   client);
3. the status: this platform's lists straight from the database; a trusted issuer's list
   fetched (SSRF guard, signature by that issuer, cache) when the credential has one.  A
   revoked or suspended credential raises :class:`CredentialRevoked` /
   :class:`CredentialSuspended`.

Verification raises; a return means every check passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from credit_commons.formats.jws import parse_compact
from credit_commons.formats.status_list import TokenStatus
from credit_commons.formats.vc_jwt import verify_vc_jwt
from credit_commons.issuer import service as catalogue_service
from credit_commons.issuer import status
from credit_commons.issuer.identifiers import is_own_issuer, own_status_list_id
from credit_commons.keys.algorithms import ACCEPTED_ALGS, PublicKey
from credit_commons.keys.errors import KeyNotFound
from credit_commons.runtime import Runtime
from credit_commons.verifier import foreign, trust
from credit_commons.verifier.sd_jwt_vc import (
    CredentialRevoked,
    CredentialSuspended,
    UnknownIssuerKey,
    UntrustedIssuer,
    disclosed_claims,
    raise_for_status,
    sd_jwt_vc_facts,
)
from credit_commons.verifier.sd_jwt_verify import verify

__all__ = [
    "CredentialRevoked",
    "CredentialSuspended",
    "UnknownIssuerKey",
    "UntrustedIssuer",
    "verify_presentation",
    "verify_sd_jwt_credential",
    "verify_vc_jwt_credential",
]


def verify_presentation(
    session: Session, rt: Runtime, presentation: str, *, audience: str, nonce: str
) -> dict[str, Any]:
    """Verify an SD-JWT+KB presentation and its status; returns the disclosed claims.

    Raises the SD-JWT errors (``credential.*``; ``credential.key_binding_missing`` without a
    KB-JWT), :class:`UnknownIssuerKey`, :class:`UntrustedIssuer`,
    ``foreign.UnknownForeignKey``/``IssuerMetadataInvalid``, ``StatusListRejected``, the
    fetcher's ``UnsafeUrl``/``FetchFailed``, :class:`CredentialRevoked` or
    :class:`CredentialSuspended`.
    """
    return _verify_sd_jwt_vc(
        session, rt, presentation, key_binding=True, audience=audience, nonce=nonce
    )


def verify_sd_jwt_credential(session: Session, rt: Runtime, credential: str) -> dict[str, Any]:
    """Verify an issuer-signed SD-JWT VC handed over without Key Binding (a credential a
    lender retrieved under consent): the same checks as :func:`verify_presentation` except
    that a KB-JWT must be absent.

    Raises what :func:`verify_presentation` raises, with ``credential.key_binding_unexpected``
    (``KeyBindingUnexpected``) for an SD-JWT that carries a KB-JWT.
    """
    return _verify_sd_jwt_vc(session, rt, credential, key_binding=False)


def _verify_sd_jwt_vc(
    session: Session,
    rt: Runtime,
    text: str,
    *,
    key_binding: bool,
    audience: str | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    keys: dict[str, PublicKey] = {v.kid: v.public_key for v in _issuer_versions(session, rt)}
    foreign_kind: list[trust.IssuerKind] = []

    def resolve(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
        # Step 1: the issuer and key come from our own key store or, for a trusted
        # issuer, from its published metadata — never from the token itself.
        iss = payload.get("iss")
        # Ours under the current public URL or an earlier one (issuer/identifiers.py).
        if is_own_issuer(session, rt, iss):
            if header.get("kid") not in keys:
                raise UnknownIssuerKey("the credential's issuer key is not known here")
            return keys[str(header["kid"])]
        kind = trust.trusted_kind(session, iss) if isinstance(iss, str) else None
        if kind is None or not isinstance(iss, str):
            raise UntrustedIssuer("the credential's issuer is not trusted here")
        foreign_kind.append(kind)
        return foreign.foreign_issuers(rt).key(iss, kind, header)

    verified = verify(
        text,
        issuer_key_resolver=resolve,
        require_key_binding=key_binding,
        forbid_key_binding=not key_binding,
        audience=audience,
        nonce=nonce,
        now=int(rt.clock.now().timestamp()),
    )
    # Step 2: the type (and the status reference's shape).
    facts = sd_jwt_vc_facts(verified)
    if foreign_kind:
        # Step 3, a trusted issuer: its own status list, when the credential names one.
        if facts.status is not None:
            raise_for_status(
                foreign.foreign_issuers(rt).status(
                    facts.issuer, foreign_kind[0], facts.status.uri, facts.status.index
                )
            )
        return _result(verified.payload, facts.vct)
    if catalogue_service.get_type_by_vct(session, rt, facts.vct) is None:
        raise UnknownIssuerKey("unknown credential type")
    # Step 3: the status.
    list_id = own_status_list_id(session, rt, facts.status.uri) if facts.status else None
    if list_id is None or facts.status is None:
        raise UnknownIssuerKey("the credential's status list is not one of this issuer's")
    raise_for_status(
        status.get_status(
            session, status.StatusRef(list_id, facts.status.index, status.StatusKind.TOKEN)
        )
    )
    return _result(verified.payload, facts.vct)


def _result(payload: Mapping[str, Any], vct: str) -> dict[str, Any]:
    return {"valid": True, "vct": vct, "claims": disclosed_claims(payload)}


def verify_vc_jwt_credential(session: Session, rt: Runtime, token: str) -> dict[str, Any]:
    """Verify one of this issuer's ``jwt_vc_json`` credentials: signature by the issuer key
    named by ``kid``, validity period, type, and its bitstring status.

    Raises ``VcJwtInvalid``/``VcJwtExpired``, :class:`UnknownIssuerKey` or
    :class:`CredentialRevoked`.
    """
    keys: dict[str, PublicKey] = {v.kid: v.public_key for v in _issuer_versions(session, rt)}
    # The kid and iss only pick the key; verify_vc_jwt refuses embedded keys with its error.
    unverified_jws = parse_compact(token, algs=ACCEPTED_ALGS, refused_headers=())
    header, unverified = unverified_jws.header, unverified_jws.payload
    key = keys.get(str(header.get("kid")))
    if key is None or not is_own_issuer(session, rt, unverified.get("iss")):
        raise UnknownIssuerKey("the credential's issuer key is not known here")
    payload = verify_vc_jwt(token, key, algs=ACCEPTED_ALGS, now=int(rt.clock.now().timestamp()))
    vc = payload["vc"]
    types = {t.name for t in catalogue_service.list_types(session, rt)}
    if not types & set(vc.get("type", [])):
        raise UnknownIssuerKey("unknown credential type")
    entry = vc.get("credentialStatus", {})
    uri, index = entry.get("statusListCredential"), entry.get("statusListIndex")
    list_id = own_status_list_id(session, rt, uri)
    if list_id is None or not str(index).isdigit():
        raise UnknownIssuerKey("the credential's status list is not one of this issuer's")
    current = status.get_status(
        session, status.StatusRef(list_id, int(index), status.StatusKind.BITSTRING)
    )
    if current is TokenStatus.INVALID:
        raise CredentialRevoked("the credential was revoked")
    subject = {k: v for k, v in vc.get("credentialSubject", {}).items() if k != "id"}
    return {
        "valid": True,
        "type": [t for t in vc["type"] if t != "VerifiableCredential"],
        "holder": payload.get("sub"),
        "claims": subject,
    }


def _issuer_versions(session: Session, rt: Runtime) -> list[Any]:
    try:
        return list(rt.key_store.versions(session, status.ISSUER_KEY))
    except KeyNotFound:
        return []
