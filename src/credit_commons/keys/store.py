"""The key-store interface and its embedded implementation.

A key store holds named signing keys in versions.  Every version keeps verifying; only the
newest signs.  The embedded store keeps each private key in the database, encrypted under
the local master key (AES-256-GCM, bound to the key's name and version); decrypted keys are
cached in memory by (name, version), so signing costs one indexed read of the newest
version plus the signature itself.  An HSM-backed store (PKCS#11) implements the same
interface in the vault issue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from credit_commons.core.cache import BoundedCache, text_size
from credit_commons.core.clock import utc
from credit_commons.core.errors import ValidationError
from credit_commons.keys.algorithms import KeyType, PrivateKey, PublicKey
from credit_commons.keys.errors import KeyDecryptionFailed, KeyExists, KeyNotFound
from credit_commons.keys.jwk import public_key_from_jwk, public_key_to_jwk, thumbprint
from credit_commons.keys.master import MasterKeyring
from credit_commons.keys.models import SigningKeyRow

__all__ = [
    "EmbeddedKeyStore",
    "KeyStore",
    "KeyVersion",
    "RowKeyStore",
    "StoredSigner",
    "key_version",
    "validate_key_name",
]

_NAME = re.compile(r"[a-z][a-z0-9-]{1,62}")
_PURPOSE = "key-store/v1"
_SIGNER_CACHE_ENTRIES = 256


def validate_key_name(name: str) -> str:
    """Return ``name`` if it is 2–63 lower-case letters, digits or dashes, starting with a
    letter; raises :class:`ValidationError` otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(
            "key name must be 2-63 lower-case letters, digits or '-', starting with a letter",
            extra={"field": "name"},
        )
    return name


@dataclass(frozen=True)
class KeyVersion:
    """Public facts about one version of a stored key."""

    name: str
    version: int
    key_type: KeyType
    kid: str
    public_key: PublicKey
    backend: str
    created_at: datetime

    def jwk(self) -> dict[str, str]:
        """The public JWK with ``kid``, ``alg`` and ``use``."""
        return public_key_to_jwk(
            self.public_key, kid=self.kid, alg=self.key_type.jose_alg, use="sig"
        )


class StoredSigner:
    """A :class:`~credit_commons.keys.algorithms.Signer` for one version of a stored key."""

    __slots__ = ("_key", "info")

    def __init__(self, info: KeyVersion, key: PrivateKey) -> None:
        self.info = info
        self._key = key

    def __repr__(self) -> str:
        return f"StoredSigner({self.info.name}#{self.info.version})"

    @property
    def key_type(self) -> KeyType:
        """The key's type."""
        return self.info.key_type

    @property
    def alg(self) -> str:
        """The JOSE ``alg`` of this key's signatures."""
        return self.info.key_type.jose_alg

    @property
    def kid(self) -> str:
        """The key id (RFC 7638 thumbprint)."""
        return self.info.kid

    @property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        return self.info.public_key

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` with this key version."""
        return self._key.sign(data)

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        """Sign each of ``messages`` (a large batch on several threads)."""
        return self._key.sign_many(messages)


class KeyStore(Protocol):
    """Named, versioned signing keys.  All methods work in the caller's session."""

    backend: str

    def create(self, session: Session, name: str, key_type: KeyType, now: datetime) -> KeyVersion:
        """Create version 1 of a new key; raises ``KeyExists`` or ``ValidationError``."""
        ...

    def rotate(self, session: Session, name: str, now: datetime) -> KeyVersion:
        """Add a new version (same key type); raises ``KeyNotFound`` or ``KeyExists``."""
        ...

    def versions(self, session: Session, name: str | None = None) -> list[KeyVersion]:
        """All versions of one key, or of every key; raises ``KeyNotFound`` for a name."""
        ...

    def signer(self, session: Session, name: str) -> StoredSigner:
        """A signer for the newest version; raises ``KeyNotFound``."""
        ...


def key_version(row: SigningKeyRow) -> KeyVersion:
    """The :class:`KeyVersion` a ``signing_keys`` row describes."""
    return KeyVersion(
        name=row.name,
        version=row.version,
        key_type=KeyType(row.key_type),
        kid=row.kid,
        public_key=public_key_from_jwk(json.loads(row.public_jwk)),
        backend=row.backend,
        created_at=utc(row.created_at),
    )


class RowKeyStore:
    """What every key store shares: key versions are ``signing_keys`` rows.

    A subclass sets ``backend``, generates one version in :meth:`_add` (where its private
    key lives is its own business) and makes signers.  Rows of another backend are not
    this store's keys: looking one up raises ``KeyNotFound``.
    """

    backend: str

    def _add(
        self, session: Session, name: str, version: int, key_type: KeyType, now: datetime
    ) -> KeyVersion:
        raise NotImplementedError

    def _row(self, session: Session, name: str, row: SigningKeyRow) -> KeyVersion:
        """Insert ``row`` in a savepoint; a duplicate (name, version) raises ``KeyExists``."""
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except DbIntegrityError as e:
            raise KeyExists(f"key {name!r} version {row.version} already exists") from e
        return key_version(row)

    def _newest(self, session: Session, name: str) -> SigningKeyRow:
        row = session.scalars(
            select(SigningKeyRow)
            .where(SigningKeyRow.name == validate_key_name(name))
            .order_by(SigningKeyRow.version.desc())
            .limit(1)
        ).first()
        if row is None:
            raise KeyNotFound(f"no key named {name!r}")
        if row.backend != self.backend:
            raise KeyNotFound(f"key {name!r} is not held in the {self.backend} key store")
        return row

    def create(self, session: Session, name: str, key_type: KeyType, now: datetime) -> KeyVersion:
        """Create version 1 of key ``name``; raises ``KeyExists`` or ``ValidationError``."""
        validate_key_name(name)
        exists = session.scalar(
            select(func.count()).select_from(SigningKeyRow).where(SigningKeyRow.name == name)
        )
        if exists:
            raise KeyExists(f"a key named {name!r} already exists")
        return self._add(session, name, 1, KeyType(key_type), now)

    def rotate(self, session: Session, name: str, now: datetime) -> KeyVersion:
        """Add the next version of ``name``.  A concurrent rotation of the same key makes
        one of the two fail with ``KeyExists`` (the unique (name, version) constraint)."""
        newest = self._newest(session, name)
        return self._add(session, name, newest.version + 1, KeyType(newest.key_type), now)

    def versions(self, session: Session, name: str | None = None) -> list[KeyVersion]:
        """All versions of ``name`` (oldest first), or of every key when ``name`` is None;
        raises ``KeyNotFound`` for an unknown name."""
        query = select(SigningKeyRow).order_by(SigningKeyRow.name, SigningKeyRow.version)
        if name is not None:
            query = query.where(SigningKeyRow.name == validate_key_name(name))
        rows = session.scalars(query).all()
        if name is not None and not rows:
            raise KeyNotFound(f"no key named {name!r}")
        return [key_version(row) for row in rows]


class EmbeddedKeyStore(RowKeyStore):
    """Private keys in the database, encrypted under the local master key.

    Another process may rotate the key file (an erasure epoch does, daily): a stored key
    wrapped under a version this process has not loaded makes it reload the file once.
    Versions an epoch destroys keep their key-store key (``RETAINED_PURPOSES``), so keys
    wrapped under them keep opening.
    """

    backend = "embedded"

    def __init__(self, master: MasterKeyring) -> None:
        self._master = master
        # Opened signers by (name, version): a handful of platform keys, each gaining a
        # version per rotation, so bounded like every other cache (core/cache.py).
        self._cache: BoundedCache[tuple[str, int], StoredSigner] = BoundedCache(
            max_entries=_SIGNER_CACHE_ENTRIES,
            max_bytes=_SIGNER_CACHE_ENTRIES * 1024,
            size=lambda key, _signer: text_size(key[0]) + 200,
        )

    @staticmethod
    def _aad(name: str, version: int) -> bytes:
        return f"signing-key\x00{name}\x00{version}".encode()

    def _add(
        self, session: Session, name: str, version: int, key_type: KeyType, now: datetime
    ) -> KeyVersion:
        key = PrivateKey.generate(key_type)
        row = SigningKeyRow(
            name=name,
            version=version,
            key_type=key_type.value,
            kid=thumbprint(key.public_key),
            public_jwk=json.dumps(public_key_to_jwk(key.public_key), sort_keys=True),
            backend=self.backend,
            private_blob=self._master.wrap(
                key.raw(), purpose=_PURPOSE, aad=self._aad(name, version)
            ),
            created_at=utc(now),
        )
        return self._row(session, name, row)

    def signer(self, session: Session, name: str) -> StoredSigner:
        """A signer for the newest version of ``name``; raises ``KeyNotFound``, or
        ``KeyDecryptionFailed`` when the stored key does not open under the master key (after
        reloading the key file once), or ``ConfigurationError`` when it no longer loads."""
        row = self._newest(session, name)
        cached = self._cache.get((row.name, row.version))
        if cached is not None:
            return cached
        aad = self._aad(row.name, row.version)
        try:
            raw = self._master.unwrap(row.private_blob, purpose=_PURPOSE, aad=aad)
        except KeyDecryptionFailed:
            # Perhaps wrapped under a version another process added since this one loaded
            # the key file: reload it once, then the error stands.
            self._master = MasterKeyring.load(self._master.path)
            raw = self._master.unwrap(row.private_blob, purpose=_PURPOSE, aad=aad)
        signer = StoredSigner(key_version(row), PrivateKey.from_raw(KeyType(row.key_type), raw))
        self._cache.put((row.name, row.version), signer)
        return signer
