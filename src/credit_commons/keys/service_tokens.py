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

A service instance outside the platform's processes (a full node, a witness) holds its own
key (:class:`ServiceIdentity`, a file of its own) and the platform only its public key,
registered by the operator (:func:`register_service_key`, version 1) and rotated by the
service itself (:func:`rotate_registered_key`: a token signed by its signing version, and a
proof signed by the successor).  Its tokens name the instance in ``sub`` (``iss`` the
service), so a token signed by one node's key cannot speak for another.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from credit_commons.core.clock import utc
from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import (
    CommonsError,
    ConflictError,
    ForbiddenError,
    UnauthorizedError,
    ValidationError,
)
from credit_commons.events import EventDetails, Token, record_event
from credit_commons.formats.jws import (
    EMBEDDED_KEY_HEADERS,
    JwsInvalid,
    parse_compact,
    sign_compact,
)
from credit_commons.keys import service as key_service
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType, PublicKey
from credit_commons.keys.errors import KeyInvalid, KeyNotFound
from credit_commons.keys.jwk import (
    public_key_from_jwk,
    public_key_to_jwk,
    thumbprint,
)
from credit_commons.keys.models import RegisteredServiceKeyRow
from credit_commons.keys.store import KeyVersion

__all__ = [
    "KEY_PROOF_TYP",
    "MAX_TTL",
    "SERVICES",
    "SERVICE_SCOPES",
    "SERVICE_TYP",
    "ServiceCaller",
    "ServiceKeyRefused",
    "ServiceKeyRegistered",
    "ServiceScopeMissing",
    "ServiceTokenInvalid",
    "ServiceTokenSource",
    "accepted_keys",
    "check_instance_name",
    "issue_service_token",
    "live_versions",
    "register_service_key",
    "registered_instances",
    "registered_keys",
    "rotate_due_service_keys",
    "rotate_registered_key",
    "rotate_service_key",
    "service_key_name",
    "verify_service_token",
]

SERVICE_TYP: Final = "service+jwt"
KEY_PROOF_TYP: Final = "service-key+jwt"
"""The ``typ`` of the proof that a rotating service holds its next key."""
_INSTANCE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_TTL: Final = 300
"""The longest a service token may live (seconds)."""
_MAX_CHARS: Final = 4096
_CLOCK_SKEW: Final = 30  # seconds an ``iat`` may lie in the verifier's future

SERVICE_SCOPES: Final[Mapping[str, str]] = {
    "log:state": "read the log's size and newest checkpoint (GET /v1/internal/log/state)",
    "keys:read": "read the service keys' versions and state (GET /v1/internal/service-keys)",
    "keys:rotate": "register the caller's own next key version "
    "(POST /v1/internal/service-keys/rotate)",
    "members:read": "read a membership's document, with its plain DID "
    "(GET /v1/reputation/members/{event_id}; a full node scores with it)",
    "log:messages": "read the signed federation messages of one log leaf "
    "(GET /v1/internal/log/messages/{index}; a full node repairs a message it lacks)",
    "partials:write": "send the partial signature of the checkpoint committee member the "
    "node is bound to (POST /v1/partials, besides the partial's own BLS signature)",
}
"""Every internal scope and what it grants."""

SERVICES: Final[Mapping[str, frozenset[str]]] = {
    "worker": frozenset({"log:state", "keys:read"}),
    "node": frozenset(
        {"log:state", "log:messages", "keys:rotate", "members:read", "partials:write"}
    ),
    "witness": frozenset({"log:state", "keys:rotate"}),
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


class ServiceKeyRefused(ConflictError):
    """A service key that cannot be registered: already registered, a rotation not signed
    by the signing version, or a proof that does not hold."""

    code = "auth.service_key_refused"


class ServiceKeyRegistered(EventDetails, event_type="service_key.registered"):
    """A service instance's public key got a version (the operator registered it, or the
    service rotated it); older versions verify for the overlap window."""

    service: Token
    name: Token
    version: int
    kid: Token


@dataclass(frozen=True, slots=True)
class ServiceCaller:
    """A verified service: its id, the instance (``name``: the service id itself for a key
    in the platform's key store), the scopes its token grants, the token's ``jti`` and the
    key version that signed it."""

    service: str
    name: str
    scopes: frozenset[str]
    jti: str
    kid: str

    @property
    def registered(self) -> bool:
        """Whether the caller signs with a registered key of its own (outside the
        platform's processes)."""
        return self.name != self.service


def check_instance_name(service: str, name: str) -> None:
    """Raise ``ValidationError`` unless ``name`` may name an instance of ``service``
    (lower-case letters, digits, ``.``, ``_``, ``-``; not a service id)."""
    if service not in SERVICES:
        raise ValidationError(
            f"no service {service!r}; services: {', '.join(sorted(SERVICES))}",
            extra={"field": "service"},
        )
    if not _INSTANCE.fullmatch(name) or name in SERVICES:
        raise ValidationError(
            "an instance name is 1-64 of a-z 0-9 . _ - and not a service id",
            extra={"field": "name"},
        )


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


def live_versions(versions: Sequence[KeyVersion], now: datetime, overlap: int) -> list[KeyVersion]:
    """Of ``versions`` (one key's), those that verify at ``now``: the newest, and each older
    one whose successor was made less than ``overlap`` seconds before."""
    ordered = sorted(versions, key=lambda v: v.version)
    if not ordered:
        return []
    window = timedelta(seconds=overlap)
    return [
        v
        for v, successor in zip(ordered, [*ordered[1:], None], strict=True)
        if successor is None or now < successor.created_at + window
    ]


def accepted_keys(
    session: Session,
    ctx: key_service.PlatformKeyContext,
    service: str,
    overlap: int,
    name: str | None = None,
) -> list[KeyVersion]:
    """The versions of ``service``'s key (or of its registered instance ``name``'s) that
    verify now: the newest, and each older one whose successor was made less than
    ``overlap`` seconds ago.  Empty when there is no key yet.  Raises ``KeyNotFound`` for an
    unknown service."""
    if name is not None and name != service:
        service_key_name(service)
        return live_versions(registered_keys(session, service, name), ctx.clock.now(), overlap)
    try:
        versions = ctx.key_store.versions(session, service_key_name(service))
    except KeyNotFound:
        if service not in SERVICES:
            raise
        return []
    return live_versions(versions, ctx.clock.now(), overlap)


def _registered_version(row: RegisteredServiceKeyRow) -> KeyVersion:
    public_key = public_key_from_jwk(json.loads(row.public_jwk))
    return KeyVersion(
        name=f"{row.service}/{row.name}",
        version=row.version,
        key_type=public_key.key_type,
        kid=row.kid,
        public_key=public_key,
        backend="registered",
        created_at=utc(row.created_at),
    )


def registered_keys(session: Session, service: str, name: str) -> list[KeyVersion]:
    """Every registered version of the instance ``name`` of ``service``, oldest first."""
    rows = session.scalars(
        select(RegisteredServiceKeyRow)
        .where(RegisteredServiceKeyRow.service == service, RegisteredServiceKeyRow.name == name)
        .order_by(RegisteredServiceKeyRow.version)
    )
    return [_registered_version(row) for row in rows]


def registered_instances(session: Session) -> list[tuple[str, str]]:
    """Every registered ``(service, name)``, sorted."""
    found = session.execute(
        select(RegisteredServiceKeyRow.service, RegisteredServiceKeyRow.name).distinct()
    )
    return sorted((service, name) for service, name in found)


def register_service_key(
    session: Session,
    ctx: key_service.PlatformKeyContext,
    *,
    service: str,
    name: str,
    public_key: PublicKey,
    actor: str,
) -> KeyVersion:
    """Register ``public_key`` as the next version (1 for a new instance) of the instance
    ``name`` of ``service``; it signs from now, and the version it follows verifies for the
    overlap window.  Records ``service_key.registered``.

    Raises ``ValidationError`` for an unknown service or a bad name, and
    :class:`ServiceKeyRefused` for a key registered before (to anyone).
    """
    check_instance_name(service, name)
    kid = thumbprint(public_key)
    if session.scalar(select(RegisteredServiceKeyRow).where(RegisteredServiceKeyRow.kid == kid)):
        raise ServiceKeyRefused("that public key is registered already; make a new one")
    versions = registered_keys(session, service, name)
    now = ctx.clock.now()
    row = RegisteredServiceKeyRow(
        service=service,
        name=name,
        version=1 + max((v.version for v in versions), default=0),
        kid=kid,
        public_jwk=json.dumps(public_key_to_jwk(public_key), sort_keys=True),
        created_at=now,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        ServiceKeyRegistered(service=service, name=name, version=row.version, kid=kid),
        actor=actor,
        at=now,
        object=ctx.objects.digest("service_key", kid),
    )
    return _registered_version(row)


def _proof_claims(proof: str) -> tuple[PublicKey, JsonObject]:
    try:
        # The proof carries the key it proves in its jwk header (as a DPoP or OpenID4VCI
        # proof does); a key by reference (jku, x5u) or certificate chain is refused.
        jws = parse_compact(
            proof,
            algs=ACCEPTED_ALGS,
            refused_headers=EMBEDDED_KEY_HEADERS - {"jwk"},
            max_chars=_MAX_CHARS,
        )
        if jws.header.get("typ") != KEY_PROOF_TYP:
            raise ServiceKeyRefused(f"the proof's typ is not {KEY_PROOF_TYP}")
        public_key = public_key_from_jwk(jws.header.get("jwk"))
        jws.verify(public_key)
        return public_key, jws.payload
    except (CommonsError, JwsInvalid, KeyInvalid) as e:
        if isinstance(e, ServiceKeyRefused):
            raise
        raise ServiceKeyRefused("the proof is not a JWS signed by the key in its jwk") from e


def rotate_registered_key(
    session: Session,
    ctx: key_service.PlatformKeyContext,
    caller: ServiceCaller,
    proof: str,
    *,
    audience: str,
) -> KeyVersion:
    """The service instance ``caller`` (its token verified) registers its next key: ``proof``
    is a compact JWS (``typ: service-key+jwt``) signed by that key, which its ``jwk`` header
    carries, with ``iss``/``sub`` the caller's service and instance, ``aud`` this platform
    and a lifetime of at most :data:`MAX_TTL`.  Only the signing version may rotate (a key in
    its overlap window or a retired one may not pick a successor).  Sending again the key
    that rotation just registered, signed by the version it replaced, answers that version
    (a retried call).  Raises :class:`ServiceKeyRefused`."""
    if not caller.registered:
        raise ServiceKeyRefused(
            "the platform's own service keys rotate in its key store (commons service-token "
            "rotate), not through this route"
        )
    public_key, claims = _proof_claims(proof)
    if (claims.get("iss"), claims.get("sub"), claims.get("aud")) != (
        caller.service,
        caller.name,
        audience,
    ):
        raise ServiceKeyRefused("the proof is not this service's for this platform")
    iat, exp = claims.get("iat"), claims.get("exp")
    moment = int(ctx.clock.now().timestamp())
    if not (isinstance(iat, int) and isinstance(exp, int)) or not (
        iat - _CLOCK_SKEW <= moment < exp and exp - iat <= MAX_TTL
    ):
        raise ServiceKeyRefused("the proof has expired or its lifetime is not acceptable")
    versions = registered_keys(session, caller.service, caller.name)
    newest = versions[-1]
    kid = thumbprint(public_key)
    if kid == newest.kid and len(versions) > 1 and caller.kid == versions[-2].kid:
        return newest
    if caller.kid != newest.kid:
        raise ServiceKeyRefused("only the signing version of a key may register its successor")
    return register_service_key(
        session,
        ctx,
        service=caller.service,
        name=caller.name,
        public_key=public_key,
        actor=ctx.operator_actor(f"service:{caller.service}/{caller.name}"),
    )


def verify_service_token(
    token: str,
    keys_of: Callable[[str, str], Sequence[KeyVersion]],
    *,
    audience: str,
    now: datetime,
    required: Sequence[str],
    max_ttl: int = MAX_TTL,
) -> ServiceCaller:
    """The caller ``token`` proves, once: 1 a compact JWS with an accepted ``alg``,
    ``typ: service+jwt``; 2 ``iss`` a known service whose accepted key (``keys_of(iss)``, see
    :func:`accepted_keys`) ``kid`` names; 3 the signature verifies; 4 ``aud`` is
    ``audience``, ``sub`` is ``iss`` (a key in the platform's store) or an instance of it
    (``keys_of(iss, sub)``: its registered keys); 5 ``iat <= now + skew < ...``, ``now < exp`` and
    ``exp - iat <= max_ttl`` (the platform's token lifetime: no token outlives the overlap
    window, which is at least that); 6 every scope is one the service may hold; 7 every
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
    service, name = claims.get("iss"), claims.get("sub")
    if not isinstance(service, str) or service not in SERVICES:
        raise ServiceTokenInvalid("the token names no known service")
    if not isinstance(name, str) or (name != service and not _INSTANCE.fullmatch(name)):
        raise ServiceTokenInvalid("the token's sub names no instance of its service")
    key = next((k for k in keys_of(service, name) if k.kid == jws.header.get("kid")), None)
    if key is None:
        raise ServiceTokenInvalid("the token's key is unknown or retired")
    try:
        jws.verify(key.public_key)
    except (CommonsError, JwsInvalid) as e:
        raise ServiceTokenInvalid("the service token's signature does not verify") from e
    if claims.get("aud") != audience:
        raise ServiceTokenInvalid("the service token is not for this platform")
    iat, exp, jti = claims.get("iat"), claims.get("exp"), claims.get("jti")
    if not (isinstance(iat, int) and isinstance(exp, int) and isinstance(jti, str) and jti):
        raise ServiceTokenInvalid("the service token lacks iat, exp or jti")
    moment = int(now.timestamp())
    if exp - iat > min(max_ttl, MAX_TTL) or iat > moment + _CLOCK_SKEW:
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
    return ServiceCaller(service=service, name=name, scopes=granted, jti=jti, kid=key.kid)


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
