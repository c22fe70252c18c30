"""The lender token endpoint: OAuth 2.0 client credentials (RFC 6749 §4.4) with client
authentication by a signed JWT, ``private_key_jwt`` (RFC 7523 §2.2 and §3).

Two steps, so that a request's database write lock is held only for the write:

1. :func:`authenticate_client` (read-only) parses the request and verifies the client
   assertion against the client's registered keys;
2. :func:`issue_token` (read-write) consumes the assertion's ``jti`` — a unique hash, so a
   replay fails even when two copies race — and signs the access token (``access_token.py``).

A request over mutual TLS (the client certificate forwarded by a trusted proxy,
``client_cert.py``) gets a token bound to that certificate, ``cnf.x5t#S256`` (RFC 8705 §3);
a client registered with a certificate gets a token only over mutual TLS with that one.

Every failure is a :class:`TokenError`, answered as RFC 6749 §5.2 JSON.  A failed client
authentication also names the denial to record (``access.denied``, operation
``oauth.token``) once the request's own transaction is over.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from credit_commons import lenders
from credit_commons.consent.access import anonymous_actor, lender_actor
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError
from credit_commons.formats.jws import parse_compact
from credit_commons.formats.oauth import OAuthError
from credit_commons.gateway.access_token import (
    LEEWAY,
    SCOPES,
    int_claim,
    issuer_url,
    mint_access_token,
    oauth_signer,
)
from credit_commons.gateway.schemas import AccessTokenResponse, TokenEndpointMetadata
from credit_commons.keys.algorithms import ACCEPTED_ALGS
from credit_commons.runtime import Runtime

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "CLIENT_CREDENTIALS",
    "OPERATION",
    "AuthenticatedClient",
    "TokenError",
    "authenticate_client",
    "authorization_server_metadata",
    "certificate_refused",
    "issue_token",
    "token_endpoint",
]

CLIENT_CREDENTIALS = "client_credentials"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OPERATION = "oauth.token"
MAX_ASSERTION_LIFETIME = 300
"""Seconds an assertion may live (``exp`` - ``iat``, and ``exp`` - now)."""

_EMBEDDED_KEYS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256"})
_ASSERTION_TYPS = frozenset({None, "JWT", "jwt", "client-authentication+jwt"})
_MAX_JTI = 256
_CLIENT_FAILED = "client authentication failed"


class TokenError(OAuthError):
    """A token request refused with an RFC 6749 §5.2 error (the one OAuth error type,
    ``formats/oauth.py``).

    ``reason`` and ``actor``, when set, are the ``access.denied`` event to record after the
    request's transaction (a failed client authentication or a refused scope).
    """

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        reason: str | None = None,
        actor: str | None = None,
    ) -> None:
        super().__init__(error, description, status=status)
        self.reason, self.actor = reason, actor


@dataclass(frozen=True)
class AuthenticatedClient:
    """A client whose assertion verified, with what the token request asked for."""

    client_id: str
    scopes: frozenset[str]
    jti: str
    assertion_expires: datetime
    certificate_thumbprint: str | None = None
    """The ``x5t#S256`` of the TLS client certificate the token is to be bound to."""


def token_endpoint(rt: Runtime) -> str:
    """The token endpoint URL, the ``aud`` client assertions name (RFC 7523 §3 item 3)."""
    return f"{issuer_url(rt)}/oauth/token"


def _invalid_client(reason: str, actor: str) -> TokenError:
    # RFC 6749 §5.2: invalid_client, 401; the description never says which check failed.
    return TokenError("invalid_client", _CLIENT_FAILED, status=401, reason=reason, actor=actor)


def certificate_refused(reason: str, rt: Runtime) -> TokenError:
    """The answer to a token request whose forwarded client certificate cannot be believed
    (``client_cert.CertificateRefused``): ``invalid_client``, like any failed client
    authentication, recorded as anonymous."""
    return _invalid_client(reason, anonymous_actor(rt))


def _requested_scopes(form: dict[str, str]) -> frozenset[str]:
    scope = form.get("scope")
    return frozenset(scope.split()) if scope and scope.strip() else SCOPES


def _assertion_of(form: dict[str, str]) -> str:
    # RFC 6749 §4.4.2: the grant type; RFC 7521 §4.2: the assertion parameters.
    if "grant_type" not in form:
        raise TokenError("invalid_request", "grant_type is required")
    if form["grant_type"] != CLIENT_CREDENTIALS:
        raise TokenError("unsupported_grant_type", "only client_credentials is supported")
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
        raise TokenError(
            "invalid_request", f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}"
        )
    assertion = form.get("client_assertion")
    if not assertion:
        raise TokenError("invalid_request", "client_assertion is required")
    return assertion


def _verified_client(
    session: Session, rt: Runtime, form: dict[str, str], assertion: str
) -> tuple[lenders.LenderClient, JsonObject]:
    """Steps 1-3: the client that signed ``assertion``, and the assertion's claims."""
    anonymous = anonymous_actor(rt)
    # 1. A compact JWS; no keys in the header, only the platform's algorithms.
    try:
        jws = parse_compact(assertion, algs=ACCEPTED_ALGS, refused_headers=_EMBEDDED_KEYS)
    except CommonsError as e:
        raise _invalid_client("auth.assertion_invalid", anonymous) from e
    header, payload = jws.header, jws.payload
    typ = header.get("typ")
    if not (typ is None or isinstance(typ, str)) or typ not in _ASSERTION_TYPS:
        raise _invalid_client("auth.assertion_invalid", anonymous)
    # 2. iss (RFC 7523 §3 item 1) names a registered client; client_id, if sent, agrees.
    client_id = payload.get("iss")
    client = lenders.get_client(session, client_id) if isinstance(client_id, str) else None
    if client is None:
        raise _invalid_client("auth.client_unknown", anonymous)
    if form.get("client_id", client.client_id) != client.client_id:
        raise _invalid_client("auth.assertion_invalid", anonymous)
    # 3. The signature (item 9), by the key the header's kid names (or the only key); the
    #    key's type must match alg (no key-type confusion).
    key = client.key(header.get("kid"))
    if key is None:
        raise _invalid_client("auth.assertion_key_unknown", anonymous)
    try:
        jws.verify(key)
    except CommonsError as e:
        raise _invalid_client("auth.assertion_signature_invalid", anonymous) from e
    return client, payload


def _check_claims(rt: Runtime, client_id: str, payload: JsonObject, actor: str) -> None:
    """Steps 4-6: sub, aud, the times and jti of a verified assertion."""
    # 4. sub (item 2) is the client too; aud (item 3) is this token endpoint or the issuer.
    if payload.get("sub") != client_id:
        raise _invalid_client("auth.assertion_invalid", actor)
    aud = payload.get("aud")
    audiences = {a for a in (aud if isinstance(aud, list) else [aud]) if isinstance(a, str)}
    if not {token_endpoint(rt), issuer_url(rt)} & audiences:
        raise _invalid_client("auth.assertion_audience_invalid", actor)
    # 5. exp (item 4) in the future but not far; iat and nbf (items 5, 6) not in the future.
    now = int(rt.clock.now().timestamp())
    exp, iat, nbf = (int_claim(payload, name) for name in ("exp", "iat", "nbf"))
    if exp is None or iat is None or ("nbf" in payload and nbf is None):
        raise _invalid_client("auth.assertion_invalid", actor)
    if now >= exp + LEEWAY:
        raise _invalid_client("auth.assertion_expired", actor)
    if exp - now > MAX_ASSERTION_LIFETIME or exp - iat > MAX_ASSERTION_LIFETIME:
        raise _invalid_client("auth.assertion_lifetime_too_long", actor)
    if iat > now + LEEWAY or (nbf or 0) > now + LEEWAY:
        raise _invalid_client("auth.assertion_not_yet_valid", actor)
    # 6. jti (item 7), checked for replay when the token is issued.
    jti = payload.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= _MAX_JTI:
        raise _invalid_client("auth.assertion_jti_missing", actor)


def authenticate_client(
    session: Session, rt: Runtime, form: dict[str, str], *, certificate: str | None = None
) -> AuthenticatedClient:
    """Check a client credentials token request and its client assertion (RFC 7523 §3),
    made over a connection whose TLS client certificate has the thumbprint ``certificate``
    (``None``: none was presented); the token is to be bound to it (RFC 8705 §3).

    Returns only if every check passed.  Raises :class:`TokenError`:
    ``unsupported_grant_type``, ``invalid_request``, ``invalid_client`` (401, with the
    denial reason; ``auth.certificate_missing`` or ``auth.certificate_mismatch`` for a
    client registered with a certificate, asking without it) or ``invalid_scope``.
    """
    client, payload = _verified_client(session, rt, form, _assertion_of(form))
    # From here on the client really signed this: denials name it.
    actor = lender_actor(rt, client.client_id)
    if not client.active:
        raise _invalid_client("auth.client_inactive", actor)
    _check_claims(rt, client.client_id, payload, actor)
    # RFC 8705 §3: a client registered with a certificate gets tokens bound to it only.
    registered = client.certificate_thumbprint
    if registered is not None:
        if certificate is None:
            raise _invalid_client("auth.certificate_missing", actor)
        if not hmac.compare_digest(certificate.encode(), registered.encode()):
            raise _invalid_client("auth.certificate_mismatch", actor)
    # RFC 6749 §3.3: a scope beyond what lenders may have is refused, not trimmed.
    scopes = _requested_scopes(form)
    if not scopes <= SCOPES:
        raise TokenError(
            "invalid_scope",
            "the requested scope is not allowed",
            reason="auth.scope_not_allowed",
            actor=actor,
        )
    exp = int_claim(payload, "exp")
    assert exp is not None  # checked by _check_claims
    return AuthenticatedClient(
        client_id=client.client_id,
        scopes=scopes,
        jti=str(payload["jti"]),
        assertion_expires=datetime.fromtimestamp(exp + LEEWAY, UTC),
        certificate_thumbprint=certificate,
    )


def _jti_hash(client_id: str, jti: str) -> str:
    # jti values are unique per issuer (RFC 7519 §4.1.7), so the client id is part of it.
    return hashlib.sha256(f"{client_id}\n{jti}".encode()).hexdigest()


def issue_token(session: Session, rt: Runtime, client: AuthenticatedClient) -> AccessTokenResponse:
    """Consume the assertion's ``jti`` and return the RFC 6749 §5.1 token response.

    Expired ``jti`` rows are purged on the way.  Raises :class:`TokenError`
    (``invalid_client``, reason ``auth.assertion_replayed``) for a ``jti`` already used.
    """
    now = rt.clock.now()
    if not lenders.consume_assertion_id(
        session,
        jti_hash=_jti_hash(client.client_id, client.jti),
        client_id=client.client_id,
        expires_at=client.assertion_expires,
        now=now,
    ):
        raise _invalid_client("auth.assertion_replayed", lender_actor(rt, client.client_id))
    ttl = timedelta(seconds=rt.settings.access_token_ttl)
    token = mint_access_token(
        oauth_signer(session, rt),
        issuer=issuer_url(rt),
        client_id=client.client_id,
        scopes=client.scopes,
        now=now,
        ttl=ttl,
        certificate_thumbprint=client.certificate_thumbprint,
    )
    return AccessTokenResponse(
        access_token=token,
        token_type="Bearer",  # noqa: S106 - RFC 6750 token type, not a secret
        expires_in=int(ttl.total_seconds()),
        scope=" ".join(sorted(client.scopes)),
    )


def authorization_server_metadata(rt: Runtime) -> TokenEndpointMetadata:
    """The RFC 8414 members of the lender token endpoint, for merging into the metadata
    document served at ``/.well-known/oauth-authorization-server``."""
    base = issuer_url(rt)
    return TokenEndpointMetadata(
        issuer=base,
        token_endpoint=token_endpoint(rt),
        jwks_uri=f"{base}/oauth/jwks",
        grant_types_supported=[CLIENT_CREDENTIALS],
        token_endpoint_auth_methods_supported=["private_key_jwt"],
        token_endpoint_auth_signing_alg_values_supported=sorted(ACCEPTED_ALGS),
        scopes_supported=sorted(SCOPES),
        tls_client_certificate_bound_access_tokens=rt.settings.client_cert_header is not None,
    )
