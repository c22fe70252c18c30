"""Use cases of the keys domain: create, rotate, list and publish signing keys.

Each state change records its event (``key.created``, ``key.rotated``) in the caller's
transaction; its ``object`` is the key's keyed digest (``objects``, the runtime's
:class:`~credit_commons.events.ObjectDigests`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

from credit_commons.core.clock import Clock
from credit_commons.core.encoding import JsonObject
from credit_commons.events import EventDetails, ObjectDigests, Token, record_event
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.did_key import encode_did_key
from credit_commons.keys.errors import KeyExists, KeyNotFound
from credit_commons.keys.store import KeyStore, KeyVersion, StoredSigner

_T = TypeVar("_T")

__all__ = [
    "KeyCreated",
    "KeyRotated",
    "PlatformKey",
    "PlatformKeyContext",
    "PublicKeys",
    "create_key",
    "list_keys",
    "platform_key_versions",
    "platform_signer",
    "public_jwks",
    "rotate_key",
]


class KeyCreated(EventDetails, event_type="key.created"):
    """A signing key was created."""

    key_name: Token
    version: int
    key_type: KeyType
    kid: Token


class KeyRotated(EventDetails, event_type="key.rotated"):
    """A signing key got a new version; older versions keep verifying."""

    key_name: Token
    version: int
    key_type: KeyType
    kid: Token


def create_key(
    session: Session,
    store: KeyStore,
    clock: Clock,
    *,
    name: str,
    key_type: KeyType,
    actor: str,
    objects: ObjectDigests,
) -> KeyVersion:
    """Create key ``name`` and record ``key.created``.  Raises ``KeyExists``/``ValidationError``."""
    now = clock.now()
    info = store.create(session, name, key_type, now)
    record_event(
        session,
        KeyCreated(key_name=info.name, version=info.version, key_type=info.key_type, kid=info.kid),
        actor=actor,
        at=now,
        object=objects.digest("signing_key", info.kid),
    )
    return info


@dataclass(frozen=True, slots=True)
class PlatformKey:
    """One of the platform's own signing keys: its key-store ``name``, the ``key_type`` it
    is made with on first use, and the operator ``role`` recorded as having made it."""

    name: str
    key_type: KeyType
    role: str


class PlatformKeyContext(Protocol):
    """What the platform-key helpers use of a running instance (``Runtime`` is one)."""

    @property
    def key_store(self) -> KeyStore:
        """The key store holding the platform's keys."""

    @property
    def clock(self) -> Clock:
        """The clock the ``key.created`` event is dated by."""

    @property
    def objects(self) -> ObjectDigests:
        """The keyed digests of event objects."""

    def operator_actor(self, name: str = "local") -> str:
        """The pseudonym of the operator role ``name``."""


def platform_signer(session: Session, rt: PlatformKeyContext, key: PlatformKey) -> StoredSigner:
    """The signer of the newest version of the platform key ``key``, made on first use
    (version 1 of ``key.key_type``, recording ``key.created`` by ``key.role`` as
    :func:`create_key` does).  Raises what the key store raises."""
    return _on_first_use(session, rt, key, lambda: rt.key_store.signer(session, key.name))


def platform_key_versions(
    session: Session, rt: PlatformKeyContext, key: PlatformKey
) -> list[KeyVersion]:
    """Every version of the platform key ``key`` (the verifying side), made on first use
    as by :func:`platform_signer`.  Raises what the key store raises."""
    return _on_first_use(session, rt, key, lambda: rt.key_store.versions(session, key.name))


def _on_first_use(
    session: Session, rt: PlatformKeyContext, key: PlatformKey, read: Callable[[], _T]
) -> _T:
    try:
        return read()
    except KeyNotFound:
        # KeyExists: another process (a second `serve` worker) made it since the read;
        # its version 1 is the key (the unique (name, version) row decides which one).
        with contextlib.suppress(KeyExists):
            create_key(
                session,
                rt.key_store,
                rt.clock,
                name=key.name,
                key_type=key.key_type,
                actor=rt.operator_actor(key.role),
                objects=rt.objects,
            )
        return read()


def rotate_key(
    session: Session,
    store: KeyStore,
    clock: Clock,
    *,
    name: str,
    actor: str,
    objects: ObjectDigests,
) -> KeyVersion:
    """Add a new version of ``name`` and record ``key.rotated``.  Raises ``KeyNotFound``."""
    now = clock.now()
    info = store.rotate(session, name, now)
    record_event(
        session,
        KeyRotated(key_name=info.name, version=info.version, key_type=info.key_type, kid=info.kid),
        actor=actor,
        at=now,
        object=objects.digest("signing_key", info.kid),
    )
    return info


def list_keys(session: Session, store: KeyStore, name: str | None = None) -> list[KeyVersion]:
    """Every version of every key (or of ``name``), oldest first."""
    return store.versions(session, name)


@dataclass(frozen=True, slots=True)
class PublicKeys:
    """A key's public JWKs, every version (newest first), and the newest key's did:key."""

    keys: list[JsonObject]
    did: str


def public_jwks(session: Session, store: KeyStore, name: str) -> PublicKeys:
    """The JWK Set of every version of ``name`` (newest first) and the newest key's did:key."""
    versions = sorted(store.versions(session, name), key=lambda v: v.version, reverse=True)
    return PublicKeys(keys=[v.jwk() for v in versions], did=encode_did_key(versions[0].public_key))
