"""The log's identity: its origin and signing key, fixed when the log is created.

A C2SP checkpoint's first line is the log's origin (tlog-checkpoint §"Note text"), and the
verifier key auditors and witnesses configure is named by that origin (signed-note §"Verifier
keys"): change either and every earlier checkpoint stops verifying.  So the origin and the
key are recorded as platform facts the first time any process needs them (the server's
start, the worker's, a log command's) and read from there ever after.  A later public URL
changes the links the platform prints, never the origin; a ``COMMONS_LOG_ORIGIN`` that
disagrees with the recorded origin is refused.  See docs/log.md, "The log's identity".
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.core.attached import Attached
from credit_commons.core.db import transaction
from credit_commons.core.errors import ConfigurationError
from credit_commons.core.facts import PlatformFactRow, get_fact, record_fact
from credit_commons.core.settings import Settings
from credit_commons.keys import KeyExists, KeyNotFound, KeyStore, KeyType
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.models import CheckpointRow
from credit_commons.ledger.note import ALG_ED25519, compute_key_id, format_vkey, parse_note
from credit_commons.runtime import Runtime

__all__ = [
    "FACT_FROZEN_PREFIX",
    "FACT_KEY_ID",
    "FACT_KEY_NAME",
    "FACT_ORIGIN",
    "LOG_KEY_NAME",
    "LogIdentity",
    "LogIdentityMismatch",
    "establish_log_identity",
    "log_identity",
]

LOG_KEY_NAME = "log"
FACT_ORIGIN = "log.origin"
FACT_KEY_NAME = "log.key_name"
FACT_KEY_ID = "log.key_id"
# Origins frozen by a declared new origin (ledger/recovery.py): log.origin.frozen.1, .2, …
FACT_FROZEN_PREFIX = "log.origin.frozen."


class LogIdentityMismatch(ConfigurationError):
    """The settings or the key store disagree with the log's recorded identity."""

    code = "log.identity_mismatch"
    title = "Log identity mismatch"


@dataclass(frozen=True)
class LogIdentity:
    """The recorded origin and signing key of this instance's log."""

    origin: str
    key_name: str
    key_id: str  # the key store's kid (RFC 7638 thumbprint) of the signing key version
    public_key: bytes  # raw Ed25519 public key
    # Earlier origins of this log, frozen when a new origin was declared (oldest first).
    frozen_origins: tuple[str, ...] = ()

    @property
    def vkey(self) -> str:
        """The verifier key ``origin+hexid+base64`` auditors configure (signed-note@v1.0.0)."""
        return format_vkey(self.origin, ALG_ED25519, self.public_key)

    @property
    def vkeys(self) -> list[str]:
        """The verifier keys of every origin this log signed under, frozen ones first."""
        return [
            format_vkey(origin, ALG_ED25519, self.public_key)
            for origin in (*self.frozen_origins, self.origin)
        ]

    @property
    def note_key_id(self) -> int:
        """The signed-note key ID: the first four bytes of SHA-256(origin, 0x0A, alg, key)."""
        return compute_key_id(self.origin, ALG_ED25519, self.public_key)


def _origin_of_existing_log(session: Session) -> str | None:
    # A log created before its identity was recorded: its checkpoints already name it.
    note = session.scalars(select(CheckpointRow.note).order_by(CheckpointRow.size).limit(1)).first()
    if note is None:
        return None
    return Checkpoint.parse(parse_note(note).text).origin


def _ensure_key(session: Session, store: KeyStore, now: datetime) -> str:
    """The kid of the newest ``log`` key version, creating the Ed25519 key if missing."""
    # KeyExists: made by an earlier start, or by a process starting at the same moment.
    with contextlib.suppress(KeyExists):
        store.create(session, LOG_KEY_NAME, KeyType.ED25519, now)
    return store.versions(session, LOG_KEY_NAME)[-1].kid


def establish_log_identity(
    session: Session, store: KeyStore, settings: Settings, now: datetime
) -> LogIdentity:
    """The log's recorded identity, recording it first if this is the log's first start.

    1. The origin: the recorded one; else the origin of the log's existing checkpoints;
       else ``settings.initial_log_origin`` (``COMMONS_LOG_ORIGIN``, or the public URL's
       host and port followed by ``/log``).  Recorded.
    2. An explicit ``COMMONS_LOG_ORIGIN`` must equal the recorded origin.
    3. The key: the recorded version of key ``log``; else the newest version (created,
       Ed25519, if there is none).  Recorded by name and kid.

    Raises :class:`LogIdentityMismatch` naming both origins when ``COMMONS_LOG_ORIGIN``
    disagrees with the recorded one, or when the recorded key is missing or not Ed25519.
    """
    origin = get_fact(session, FACT_ORIGIN)
    if origin is None:
        initial = _origin_of_existing_log(session) or settings.initial_log_origin
        origin = record_fact(session, FACT_ORIGIN, initial, now)
    if settings.log_origin is not None and settings.log_origin != origin:
        raise LogIdentityMismatch(
            f"COMMONS_LOG_ORIGIN={settings.log_origin!r} disagrees with the log's recorded "
            f"origin {origin!r}",
            hint=f"unset COMMONS_LOG_ORIGIN or set it to {origin!r}: a log's origin is fixed "
            "when it is created, or its checkpoints would stop verifying",
        )
    key_name = get_fact(session, FACT_KEY_NAME)
    key_id = get_fact(session, FACT_KEY_ID)
    if key_name is None or key_id is None:
        key_name = record_fact(session, FACT_KEY_NAME, LOG_KEY_NAME, now)
        key_id = record_fact(session, FACT_KEY_ID, _ensure_key(session, store, now), now)
    try:
        versions = store.versions(session, key_name)
    except KeyNotFound:
        versions = []
    version = next((v for v in versions if v.kid == key_id), None)
    if version is None or version.key_type is not KeyType.ED25519:
        raise LogIdentityMismatch(
            f"the log's recorded key {key_name!r} (kid {key_id}) is not an Ed25519 key in "
            "the key store",
            hint="restore the key store (signing_keys) and master key the log was created with",
        )
    frozen = session.execute(
        select(PlatformFactRow.key, PlatformFactRow.value).where(
            PlatformFactRow.key.like(f"{FACT_FROZEN_PREFIX}%")
        )
    ).all()
    ordered = tuple(v for _, v in sorted(frozen, key=lambda kv: int(kv[0].rsplit(".", 1)[1])))
    return LogIdentity(origin, key_name, key_id, version.public_key.raw(), ordered)


def log_identity(rt: Runtime) -> LogIdentity:
    """This runtime's log identity, established once per process and then remembered.

    Raises :class:`LogIdentityMismatch` (see :func:`establish_log_identity`).
    """
    # Established outside any lock: a caller holding a write transaction must not wait on
    # one another caller holds while it waits on the database.
    identity = _IDENTITIES.peek(rt)
    if identity is None:
        identity = _establish(rt)
        _IDENTITIES.set(rt, identity)
    return identity


def known_log_identity(rt: Runtime) -> LogIdentity | None:
    """The log identity this runtime established already (:func:`log_identity`), without
    touching the database; ``None`` before it did."""
    return _IDENTITIES.peek(rt)


def _establish(rt: Runtime) -> LogIdentity:
    with transaction(rt.sessions) as session:
        return establish_log_identity(session, rt.key_store, rt.settings, rt.clock.now())


_IDENTITIES = Attached[Runtime, LogIdentity](_establish)
