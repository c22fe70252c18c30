"""JWT access tokens for lenders (RFC 9068), signed by the platform's ``oauth`` key.

The token endpoint (``oauth.py``) mints them; every lender API request presents one as a
bearer token (RFC 6750) and :func:`authenticate_lender` checks it.  Any failure raises
:class:`~credit_commons.consent.access.NotAuthenticated`, whose handler records
``access.denied`` and answers 401 without saying why.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from credit_commons import lenders
from credit_commons.consent.access import (
    Denied,
    NotAuthenticated,
    anonymous_actor,
    lender_actor,
)
from credit_commons.core.attached import Attached
from credit_commons.core.cache import BoundedCache
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError
from credit_commons.core.ids import new_id
from credit_commons.formats.jws import parse_compact, sign_compact
from credit_commons.gateway.openapi import JwkSet
from credit_commons.keys import service as key_service
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType
from credit_commons.keys.errors import KeyNotFound
from credit_commons.keys.store import KeyVersion, StoredSigner
from credit_commons.runtime import Runtime

__all__ = [
    "ACCESS_TOKEN_TYP",
    "CNF_THUMBPRINT",
    "LEEWAY",
    "OAUTH_KEY",
    "SCOPES",
    "LenderPrincipal",
    "authenticate_lender",
    "int_claim",
    "issuer_url",
    "mint_access_token",
    "oauth_jwks",
    "oauth_signer",
    "require_scope",
]

OAUTH_KEY = "oauth"
ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 - a JOSE typ, not a secret
LEEWAY = 30
"""Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``."""
SCOPES = frozenset({"consent:request", "consent:read", "credentials:read", "discovery:read"})
"""Every scope a lender may ask for (and gets when it asks for none)."""

_EMBEDDED_KEYS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256"})
CNF_THUMBPRINT = "x5t#S256"
"""The confirmation method of a certificate-bound token (RFC 8705 §3.1): ``cnf`` holds the
base64url SHA-256 of the DER client certificate under this name."""


@dataclass(frozen=True)
class LenderPrincipal:
    """An authenticated lender: its client id, the scopes of its token, the purposes it
    may ask consent for, and its event ``actor`` pseudonym."""

    client_id: str
    scopes: frozenset[str]
    purposes: frozenset[str]
    actor: str


def issuer_url(rt: Runtime) -> str:
    """The authorization server's issuer identifier, and the tokens' audience."""
    return rt.settings.public_url.rstrip("/")


_OAUTH_PLATFORM_KEY = key_service.PlatformKey(OAUTH_KEY, KeyType.ED25519, "oauth")


def oauth_signer(session: Session, rt: Runtime) -> StoredSigner:
    """The signer of access tokens (key ``oauth``, Ed25519, made on first use)."""
    return key_service.platform_signer(session, rt, _OAUTH_PLATFORM_KEY)


def oauth_jwks(session: Session, rt: Runtime) -> JwkSet:
    """The JWK Set that verifies access tokens: every version of the ``oauth`` key."""
    versions = key_service.platform_key_versions(session, rt, _OAUTH_PLATFORM_KEY)
    return JwkSet(keys=[v.jwk() for v in sorted(versions, key=lambda v: -v.version)])


def mint_access_token(
    signer: StoredSigner,
    *,
    issuer: str,
    client_id: str,
    scopes: frozenset[str],
    now: datetime,
    ttl: timedelta,
    jti: str | None = None,
    certificate_thumbprint: str | None = None,
) -> str:
    """An RFC 9068 access token for ``client_id`` (``typ`` ``at+jwt``; §2.2 claims), bound
    to a TLS client certificate when ``certificate_thumbprint`` (its ``x5t#S256``) is given:
    ``cnf: {"x5t#S256": …}`` (RFC 8705 §3.1)."""
    iat = int(now.timestamp())
    claims: JsonObject = {
        "iss": issuer,
        "aud": issuer,
        "sub": client_id,
        "client_id": client_id,
        "iat": iat,
        "nbf": iat,
        "exp": iat + int(ttl.total_seconds()),
        "jti": jti or new_id("at"),
        "scope": " ".join(sorted(scopes)),
    }
    if certificate_thumbprint is not None:
        claims["cnf"] = {CNF_THUMBPRINT: certificate_thumbprint}
    return sign_compact({"typ": ACCESS_TOKEN_TYP, "kid": signer.kid}, claims, signer)


def _key_versions(rt: Runtime) -> BoundedCache[str, KeyVersion]:
    return _KEY_VERSIONS(rt)


_KEY_VERSIONS = Attached[Runtime, BoundedCache[str, KeyVersion]](
    lambda _rt: BoundedCache(
        max_entries=256, max_bytes=256 * 1024, size=lambda kid, _v: len(kid) + 200
    )
)


def _key_version(session: Session, rt: Runtime, kid: object) -> KeyVersion | None:
    # Versions never change once made (a rotation adds one), so they are cached by kid.
    # Only kids the key store knows are cached: a token naming any other costs one lookup
    # and adds nothing.
    if not isinstance(kid, str):
        return None
    cache = _key_versions(rt)
    found = cache.get(kid)
    if found is None:
        try:
            versions = rt.key_store.versions(session, OAUTH_KEY)
        except KeyNotFound:
            return None
        for version in versions:
            cache.put(version.kid, version)
        found = cache.get(kid)
    return found


def _verified_tokens(rt: Runtime) -> BoundedCache[str, tuple[JsonObject, JsonObject]]:
    """The header and payload of tokens whose signature verified, most recent first.

    The header and payload dicts are shared by every request that presents the token:
    read them, never change them.

    A token is immutable and the key versions that verify it never change, so its
    signature needs checking once per process; everything that can change — expiry, the
    client's status — is still checked on every request.  A lender presents one token for
    its lifetime (minutes), so a small cache saves a signature check on nearly every call.
    """
    return _VERIFIED_TOKENS(rt)


_VERIFIED_TOKENS = Attached[Runtime, BoundedCache[str, tuple[JsonObject, JsonObject]]](
    lambda _rt: BoundedCache(
        max_entries=4096,
        max_bytes=16 * 1024 * 1024,
        # The token text, and its decoded header and payload (about as much again).
        size=lambda token, _parts: 2 * len(token),
    )
)


def _signed_parts(
    session: Session, rt: Runtime, token: str
) -> tuple[JsonObject, JsonObject] | None:
    # The token's header and payload if it is a compact JWS with no key of its own, an
    # algorithm of the platform's policy, and a valid signature by a version of the oauth
    # key (RFC 9068 §4 step 4); None otherwise.
    cache = _verified_tokens(rt)
    found = cache.get(token)
    if found is not None:
        return found
    try:
        jws = parse_compact(token, algs=ACCEPTED_ALGS, refused_headers=_EMBEDDED_KEYS)
    except CommonsError:
        return None
    header, payload = jws.header, jws.payload
    version = _key_version(session, rt, header.get("kid"))
    if version is None:
        return None
    try:
        jws.verify(version.public_key)
    except CommonsError:
        return None
    cache.put(token, (header, payload))
    return header, payload


def int_claim(payload: JsonObject, name: str) -> int | None:
    """A NumericDate claim (RFC 7519 §2) as an integer; ``None`` if absent or not one."""
    value = payload.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _audience_ok(aud: object, expected: str) -> bool:
    return aud == expected or (isinstance(aud, list) and expected in aud)


_NOT_BOUND = object()


def _bound_thumbprint(payload: JsonObject) -> object:
    # The token's x5t#S256 confirmation (RFC 8705 §3.1), _NOT_BOUND without a cnf claim,
    # None for a cnf that is not one (refused by the caller).
    if "cnf" not in payload:
        return _NOT_BOUND
    cnf = payload["cnf"]
    value = cnf.get(CNF_THUMBPRINT) if isinstance(cnf, dict) else None
    return value if isinstance(value, str) and value else None


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def authenticate_lender(
    session: Session,
    rt: Runtime,
    authorization: str | None,
    *,
    operation: str,
    certificate: str | None = None,
) -> LenderPrincipal:
    """The lender behind ``Authorization: Bearer <access token>`` (RFC 9068 §4), over a
    connection whose TLS client certificate has the thumbprint ``certificate`` (``None``:
    none was presented).

    A certificate-bound token (``cnf.x5t#S256``, RFC 8705 §3) is accepted only with the
    same certificate; a client registered with a certificate only with a token bound to
    that one.

    Returns only if every check passed.  Raises
    :class:`~credit_commons.consent.access.NotAuthenticated` with ``reason``
    ``auth.token_missing``, ``auth.token_invalid``, ``auth.token_expired``,
    ``auth.client_inactive``, ``auth.token_unbound`` (a client with a certificate, a token
    not bound to it), ``auth.certificate_missing`` or ``auth.certificate_mismatch``; the
    actor is the lender when the token's signature verified.
    """
    anonymous = anonymous_actor(rt)

    def refuse(reason: str, actor: str = anonymous) -> NotAuthenticated:
        return NotAuthenticated(operation=operation, reason=reason, actor=actor)

    # RFC 6750 §2.1: the bearer token in the Authorization header.
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise refuse("auth.token_missing")
    # 1-2. A compact JWS signed by a version of the platform's oauth key.
    parts = _signed_parts(session, rt, token.strip())
    if parts is None:
        raise refuse("auth.token_invalid")
    header, payload = parts
    client_id = payload.get("client_id")
    if not isinstance(client_id, str) or payload.get("sub") != client_id:
        raise refuse("auth.token_invalid")
    actor = lender_actor(rt, client_id)
    # 3. typ at+jwt (§4 step 1), iss (step 2), aud (step 3).
    if header.get("typ") not in (ACCESS_TOKEN_TYP, "application/at+jwt"):
        raise refuse("auth.token_invalid", actor)
    if payload.get("iss") != issuer_url(rt) or not _audience_ok(payload.get("aud"), issuer_url(rt)):
        raise refuse("auth.token_invalid", actor)
    # 4. Times (step 5), with a small leeway for clock skew.
    now = rt.clock.now().timestamp()
    exp, iat, nbf = (int_claim(payload, name) for name in ("exp", "iat", "nbf"))
    if exp is None or iat is None or ("nbf" in payload and nbf is None):
        raise refuse("auth.token_invalid", actor)
    if now >= exp + LEEWAY:
        raise refuse("auth.token_expired", actor)
    if iat > now + LEEWAY or (nbf or 0) > now + LEEWAY:
        raise refuse("auth.token_invalid", actor)
    scope = payload.get("scope")
    if not isinstance(scope, str) or not isinstance(payload.get("jti"), str):
        raise refuse("auth.token_invalid", actor)
    bound = _bound_thumbprint(payload)
    if bound is None:
        raise refuse("auth.token_invalid", actor)
    # 5. The client still exists and is active.
    status = lenders.client_status(session, client_id)
    if status is None or not status.active:
        raise refuse("auth.client_inactive", actor)
    # 6. Certificate binding (RFC 8705 §3).
    binding = _binding_refusal(bound, status.certificate_thumbprint, certificate)
    if binding is not None:
        raise refuse(binding, actor)
    return LenderPrincipal(
        client_id=client_id,
        scopes=frozenset(scope.split()) & SCOPES,
        purposes=frozenset(status.purposes),
        actor=actor,
    )


def _binding_refusal(bound: object, registered: str | None, certificate: str | None) -> str | None:
    """Why a token bound to ``bound`` (its ``cnf.x5t#S256``, or ``_NOT_BOUND``) may
    not be used by a client registered with ``registered`` over a connection presenting
    ``certificate``; ``None`` when it may (RFC 8705 §3).

    A client registered with a certificate uses tokens bound to it only (one bound to an
    earlier certificate, or none, is refused); a bound token is accepted only over a
    connection with the same certificate.
    """
    if registered is not None and not (isinstance(bound, str) and _same(bound, registered)):
        return "auth.token_unbound"
    if isinstance(bound, str):
        if certificate is None:
            return "auth.certificate_missing"
        if not _same(bound, certificate):
            return "auth.certificate_mismatch"
    return None


def require_scope(principal: LenderPrincipal, scope: str, *, operation: str) -> None:
    """Return if ``principal``'s token carries ``scope``; raise
    :class:`~credit_commons.consent.access.Denied` (``auth.scope_missing``, 403) if not."""
    if scope not in principal.scopes:
        raise Denied(operation=operation, reason="auth.scope_missing", actor=principal.actor)
