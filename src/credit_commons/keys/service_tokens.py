"""Service-to-service tokens (issue 21 item 2; seed 002 §14): the platform's own services
(``commons worker``, full nodes, witnesses, the web console when split out) call internal
routes with a short-lived compact JWS (``typ: service+jwt``) signed by the calling service's
own Ed25519 key in the key store (``service-<id>``, made on first use).

Claims: ``iss`` and ``sub`` the service id, ``aud`` the platform's public URL, ``scope`` a
space-separated list (each within what the service may ever be granted, :data:`SERVICES`),
``iat``, ``exp`` (at most :data:`MAX_TTL` seconds later) and a random ``jti``.  Verifiers need
only public keys (:func:`accepted_keys`).

Rotation with an overlap window: :func:`rotate_service_key` adds a version, which signs from
then on; the version it replaced keeps verifying for ``overlap`` seconds after its successor
was made, then is retired (refused).  With ``overlap`` at least the token lifetime, every token
signed before a rotation expires before its key retires, so a rotation fails no call.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError, ForbiddenError, UnauthorizedError
from credit_commons.formats.jws import JwsInvalid, parse_compact, sign_compact
from credit_commons.keys import service as key_service
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType
from credit_commons.keys.errors import KeyNotFound
from credit_commons.keys.store import KeyVersion

__all__ = [
    "MAX_TTL",
    "SERVICES",
    "SERVICE_SCOPES",
    "SERVICE_TYP",
    "ServiceCaller",
    "ServiceScopeMissing",
    "ServiceTokenInvalid",
    "ServiceTokenSource",
    "accepted_keys",
    "issue_service_token",
    "rotate_due_service_keys",
    "rotate_service_key",
    "service_key_name",
    "verify_service_token",
]

SERVICE_TYP: Final = "service+jwt"
MAX_TTL: Final = 300
"""The longest a service token may live (seconds)."""
_MAX_CHARS: Final = 4096
_CLOCK_SKEW: Final = 30  # seconds an ``iat`` may lie in the verifier's future

SERVICE_SCOPES: Final[Mapping[str, str]] = {
    "log:state": "read the log's size and newest checkpoint (GET /v1/internal/log/state)",
    "keys:read": "read the service keys' versions and state (GET /v1/internal/service-keys)",
}
"""Every internal scope and what it grants."""

SERVICES: Final[Mapping[str, frozenset[str]]] = {
    "worker": frozenset({"log:state", "keys:read"}),
    "node": frozenset({"log:state"}),
    "witness": frozenset({"log:state"}),
    "console": frozenset({"log:state", "keys:read"}),
}
"""Each service id and the scopes it may ever be granted: a token asking for more is
refused however it is signed."""


class ServiceTokenInvalid(UnauthorizedError):
    """A service token that is malformed, unsigned by a current key, expired or not for us."""

    code = "auth.service_token_invalid"


class ServiceScopeMissing(ForbiddenError):
    """A valid service token without the scope the route requires."""

    code = "auth.service_scope_missing"


@dataclass(frozen=True, slots=True)
class ServiceCaller:
    """A verified service: its id, the scopes its token grants, the token's ``jti`` and the
    key version that signed it."""

    service: str
    scopes: frozenset[str]
    jti: str
    kid: str


def service_key_name(service: str) -> str:
    """The key-store name of ``service``'s signing key.  Raises ``KeyNotFound`` for a
    service that is not one of :data:`SERVICES`."""
    if service not in SERVICES:
        raise KeyNotFound(f"no service {service!r}; services: {', '.join(sorted(SERVICES))}")
    return f"service-{service}"


def _platform_key(service: str) -> key_service.PlatformKey:
    return key_service.PlatformKey(service_key_name(service), KeyType.ED25519, "operator")


def issue_service_token(
    session: Session,
    ctx: key_service.PlatformKeyContext,
    *,
    service: str,
    scopes: Sequence[str],
    audience: str,
    ttl: int,
) -> str:
    """A token for ``service`` granting ``scopes`` at ``audience`` for ``ttl`` seconds,
    signed by the newest version of the service's key (made on first use).

    Raises :class:`ServiceScopeMissing` for a scope the service may not hold, ``ValueError``
    for a ``ttl`` outside 1..:data:`MAX_TTL` or no scope.
    """
    if not 0 < ttl <= MAX_TTL:
        raise ValueError(f"a service token lives 1..{MAX_TTL} seconds, not {ttl}")
    wanted = sorted(set(scopes))
    if not wanted:
        raise ValueError("a service token grants at least one scope")
    beyond = [s for s in wanted if s not in SERVICES.get(service, frozenset())]
    if service not in SERVICES or beyond:
        raise ServiceScopeMissing(
            f"service {service!r} may not hold {', '.join(beyond) or 'any scope'}"
        )
    signer = key_service.platform_signer(session, ctx, _platform_key(service))
    now = int(ctx.clock.now().timestamp())
    payload: JsonObject = {
        "iss": service,
        "sub": service,
        "aud": audience,
        "scope": " ".join(wanted),
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
    }
    return sign_compact({"typ": SERVICE_TYP, "kid": signer.kid}, payload, signer)


def accepted_keys(
    session: Session, ctx: key_service.PlatformKeyContext, service: str, overlap: int
) -> list[KeyVersion]:
    """The versions of ``service``'s key that verify now: the newest, and each older one
    whose successor was made less than ``overlap`` seconds ago.  Empty when the service
    has no key yet.  Raises ``KeyNotFound`` for an unknown service."""
    try:
        versions = sorted(
            ctx.key_store.versions(session, service_key_name(service)), key=lambda v: v.version
        )
    except KeyNotFound:
        if service not in SERVICES:
            raise
        return []
    now = ctx.clock.now()
    window = timedelta(seconds=overlap)
    return [
        v
        for v, successor in zip(versions, [*versions[1:], None], strict=True)
        if successor is None or now < successor.created_at + window
    ]


def verify_service_token(
    token: str,
    keys_of: Callable[[str], Sequence[KeyVersion]],
    *,
    audience: str,
    now: datetime,
    required: Sequence[str],
) -> ServiceCaller:
    """The caller ``token`` proves, once: 1 a compact JWS with an accepted ``alg``,
    ``typ: service+jwt``; 2 ``iss`` a known service whose accepted key (``keys_of(iss)``, see
    :func:`accepted_keys`) ``kid`` names; 3 the signature verifies; 4 ``aud`` is
    ``audience``, ``sub`` is ``iss``; 5 ``iat <= now + skew < ...``, ``now < exp`` and
    ``exp - iat <= MAX_TTL``; 6 every scope is one the service may hold; 7 every
    ``required`` scope is granted.

    Raises :class:`ServiceTokenInvalid` (1-6) or :class:`ServiceScopeMissing` (7).
    """
    try:
        jws = parse_compact(token, algs=ACCEPTED_ALGS, max_chars=_MAX_CHARS)
    except JwsInvalid as e:
        raise ServiceTokenInvalid("the service token is not an acceptable JWS") from e
    if jws.header.get("typ") != SERVICE_TYP:
        raise ServiceTokenInvalid(f"the token's typ is not {SERVICE_TYP}")
    try:
        claims = jws.payload
    except (CommonsError, JwsInvalid) as e:
        raise ServiceTokenInvalid("the service token's payload is malformed") from e
    service = claims.get("iss")
    if not isinstance(service, str) or service not in SERVICES:
        raise ServiceTokenInvalid("the token names no known service")
    key = next((k for k in keys_of(service) if k.kid == jws.header.get("kid")), None)
    if key is None:
        raise ServiceTokenInvalid("the token's key is unknown or retired")
    try:
        jws.verify(key.public_key)
    except (CommonsError, JwsInvalid) as e:
        raise ServiceTokenInvalid("the service token's signature does not verify") from e
    if claims.get("aud") != audience or claims.get("sub") != service:
        raise ServiceTokenInvalid("the service token is not for this platform")
    iat, exp, jti = claims.get("iat"), claims.get("exp"), claims.get("jti")
    if not (isinstance(iat, int) and isinstance(exp, int) and isinstance(jti, str) and jti):
        raise ServiceTokenInvalid("the service token lacks iat, exp or jti")
    moment = int(now.timestamp())
    if exp - iat > MAX_TTL or iat > moment + _CLOCK_SKEW:
        raise ServiceTokenInvalid("the service token's lifetime is not acceptable")
    if moment >= exp:
        raise ServiceTokenInvalid("the service token has expired")
    scope = claims.get("scope")
    granted = frozenset(scope.split(" ")) if isinstance(scope, str) and scope else frozenset()
    if not granted or not granted <= SERVICES[service]:
        raise ServiceTokenInvalid("the service token grants scopes the service may not hold")
    missing = sorted(set(required) - granted)
    if missing:
        raise ServiceScopeMissing(f"the service token lacks scope {', '.join(missing)}")
    return ServiceCaller(service=service, scopes=granted, jti=jti, kid=key.kid)


def rotate_service_key(
    session: Session, ctx: key_service.PlatformKeyContext, service: str
) -> KeyVersion:
    """Make a new version of ``service``'s key the signer (the key itself on first use);
    the previous version keeps verifying for the overlap window.  Records ``key.rotated``
    (or ``key.created``)."""
    name = service_key_name(service)
    try:
        return key_service.rotate_key(
            session,
            ctx.key_store,
            ctx.clock,
            name=name,
            actor=ctx.operator_actor("operator"),
            objects=ctx.objects,
        )
    except KeyNotFound:
        key_service.platform_signer(session, ctx, _platform_key(service))
        return max(ctx.key_store.versions(session, name), key=lambda v: v.version)


def rotate_due_service_keys(
    session: Session, ctx: key_service.PlatformKeyContext, period: timedelta
) -> list[KeyVersion]:
    """Rotate each service key whose newest version is at least ``period`` old (a service
    without a key yet is left to make it on first use); the new versions."""
    now = ctx.clock.now()
    rotated = []
    for service in sorted(SERVICES):
        try:
            versions = ctx.key_store.versions(session, service_key_name(service))
        except KeyNotFound:
            continue
        newest = max(versions, key=lambda v: v.version)
        if now - newest.created_at >= period:
            rotated.append(rotate_service_key(session, ctx, service))
    return rotated


class ServiceTokenSource:
    """A calling service's tokens: one is issued, reused while more than ``margin`` seconds
    of its life remain, then replaced (so a caller signs a token a few times per lifetime,
    not per call).  A token in hand when the key rotates stays good: its key verifies for
    the overlap window, which outlasts it.  Thread-safe."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        ctx: key_service.PlatformKeyContext,
        *,
        service: str,
        scopes: Sequence[str],
        audience: str,
        ttl: int,
        margin: int = 60,
    ) -> None:
        if not 0 <= margin < ttl:
            raise ValueError("the renewal margin must be shorter than the token's life")
        self._sessions, self._ctx = sessions, ctx
        self.service, self.scopes, self.audience = service, tuple(scopes), audience
        self.ttl, self.margin = ttl, margin
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def token(self) -> str:
        """A token with more than ``margin`` seconds left."""
        with self._lock:
            now = self._ctx.clock.now().timestamp()
            if self._token is None or now >= self._renew_at:
                with transaction(self._sessions) as session:
                    self._token = issue_service_token(
                        session,
                        self._ctx,
                        service=self.service,
                        scopes=self.scopes,
                        audience=self.audience,
                        ttl=self.ttl,
                    )
                self._renew_at = now + self.ttl - self.margin
            return self._token

    def authorization(self) -> dict[str, str]:
        """The ``Authorization`` header carrying :meth:`token`."""
        return {"Authorization": f"Bearer {self.token()}"}
