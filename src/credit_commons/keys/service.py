"""Use cases of the keys domain: create, rotate, list and publish signing keys.

Each state change records its event (``key.created``, ``key.rotated``) in the caller's
transaction; its ``object`` is the key's keyed digest (``objects``, the runtime's
:class:`~credit_commons.ledger.events.ObjectDigests`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from credit_commons.core.clock import Clock
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.did_key import encode_did_key
from credit_commons.keys.errors import KeyNotFound
from credit_commons.keys.store import KeyStore, KeyVersion, StoredSigner
from credit_commons.ledger.events import EventDetails, ObjectDigests, Token, record_event

__all__ = [
    "KeyCreated",
    "KeyRotated",
    "create_key",
    "list_keys",
    "public_jwks",
    "rotate_key",
    "signer_or_create",
    "versions_or_create",
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


def versions_or_create(
    session: Session,
    store: KeyStore,
    clock: Clock,
    *,
    name: str,
    key_type: KeyType,
    actor: str,
    objects: ObjectDigests,
) -> list[KeyVersion]:
    """Every version of ``name``; a key used before it was made is created here (version
    1 of ``key_type``, recording ``key.created`` like :func:`create_key`)."""
    try:
        return store.versions(session, name)
    except KeyNotFound:
        create_key(
            session, store, clock, name=name, key_type=key_type, actor=actor, objects=objects
        )
        return store.versions(session, name)


def signer_or_create(
    session: Session,
    store: KeyStore,
    clock: Clock,
    *,
    name: str,
    key_type: KeyType,
    actor: str,
    objects: ObjectDigests,
) -> StoredSigner:
    """The signer of ``name``'s newest version, creating the key first as
    :func:`versions_or_create` does."""
    try:
        return store.signer(session, name)
    except KeyNotFound:
        create_key(
            session, store, clock, name=name, key_type=key_type, actor=actor, objects=objects
        )
        return store.signer(session, name)


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


def public_jwks(session: Session, store: KeyStore, name: str) -> dict[str, Any]:
    """The JWK Set of every version of ``name`` (newest first) and the newest key's did:key."""
    versions = sorted(store.versions(session, name), key=lambda v: v.version, reverse=True)
    return {
        "keys": [v.jwk() for v in versions],
        "did": encode_did_key(versions[0].public_key),
    }
