"""The local master key file: versioned 256-bit keys in a 0600 JSON file.

The file is the root of the embedded key hierarchy: private signing keys in the database
are encrypted under a key derived from it (HKDF-SHA-256, one label per purpose), and in
development the pseudonymisation pepper is derived from it too.  It is created on first run
with mode 0600 and marked ``"development": true``; production refuses such a file and never
creates one implicitly (``commons keys init-master --production`` makes a production file).
Rotation appends a new version: new encryptions use the newest, old versions keep opening.

*Destroying* a version (what an erasure epoch does to the vault's master-key version,
docs/operations.md) removes its key from the file for good.  What other parts of the
platform derived from it must outlive it — the key-store key that wraps signing keys, the
peppers, the KMS id — is kept as those derived keys only (:data:`RETAINED_PURPOSES`), which
HKDF makes independent of the destroyed ``vault/kek`` key (RFC 5869 §3.2: ``info`` binds
each output to its context).  So from then on the file cannot unwrap a subject key wrapped
under that version, and everything else keeps working.  (A copy of the file made before
still holds the key: docs/operations.md says to replace key-file backups at each epoch.)

File format (``commons-master-key/v1``)::

    {"format": "commons-master-key/v1", "development": true,
     "versions": [{"version": 1, "key": "<base64url 32 bytes>", "created_at": "…"},
                  {"version": 2, "key": "…", "created_at": "…"}]}

    A destroyed version: {"version": 1, "created_at": "…", "destroyed_at": "…",
                          "retained": {"<purpose>": "<base64url 32 bytes>", …}}

Other top-level members (the local KMS keeps its ``min_decrypt_version`` there) are kept as
they are by every rewrite.  Changes are read-modify-write under an exclusive lock on a
sidecar file (``.<name>.lock``), so two processes rotating at once never lose a version.

Wrapped values are ``mk1.<version>.<base64url nonce>.<base64url ciphertext>``: AES-256-GCM
with associated data that binds each ciphertext to what it protects, so it cannot be moved.
"""

from __future__ import annotations

import fcntl
import json
import secrets
import stat
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from credit_commons.core.encoding import JsonObject, b64url_decode, b64url_encode
from credit_commons.core.errors import CommonsError, ConfigurationError
from credit_commons.core.files import write_private
from credit_commons.keys.errors import KeyDecryptionFailed

__all__ = ["RETAINED_PURPOSES", "MasterKeyring"]

_FORMAT = "commons-master-key/v1"
_WRAP_PREFIX = "mk1"

RETAINED_PURPOSES = (
    "key-store/v1",  # keys/store.py: the key that wraps stored signing keys
    "pseudonym-pepper",  # vault/kms.py: the identifier pepper of the local KMS
    "pseudonym-pepper/dev",  # runtime.py: the development event pepper
    "vault/kek-id",  # vault/kms.py: the local KMS's stable id
)
"""Every purpose a destroyed version keeps, as its derived key only.  Everything derived from
the master key except the vault's ``vault/kek`` must be listed here: a purpose missing from
it dies with the version (``derive`` then raises)."""


def _derive(key: bytes, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"commons/{purpose}".encode()
    ).derive(key)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # An exclusive lock on a sidecar file: the key file itself is replaced by a rename on
    # every write, so a lock on it would be on an inode that no longer is the file.
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    with open(lock, "a") as handle:
        lock.chmod(0o600)
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class MasterKeyring:
    """The versioned master keys from one key file (and what destroyed versions retain)."""

    path: Path
    development: bool
    versions: dict[int, bytes] = field(repr=False)
    retained: dict[int, dict[str, bytes]] = field(default_factory=dict, repr=False)
    """Destroyed versions: their :data:`RETAINED_PURPOSES` derived keys, nothing else."""

    @property
    def current_version(self) -> int:
        """The newest version: the only one used for new encryptions."""
        return max(self.versions)

    # -- file handling -------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, *, development: bool, now: datetime) -> MasterKeyring:
        """Create a new key file with one fresh version.

        Raises :class:`ConfigurationError` if the file already exists.
        """
        with _file_lock(path):
            if path.exists():
                raise ConfigurationError(f"master key file {path} already exists")
            ring = cls(path, development, {1: secrets.token_bytes(32)})
            ring._save({}, {1: {"created_at": now.isoformat()}})
        return ring

    @classmethod
    def load(cls, path: Path) -> MasterKeyring:
        """Load an existing key file.

        Raises :class:`ConfigurationError` if it is missing, readable by group or others,
        or malformed.
        """
        return cls._parse(path, cls._read(path))

    @staticmethod
    def _read(path: Path) -> JsonObject:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError as e:
            raise ConfigurationError(
                f"master key file {path} does not exist",
                hint="run `commons keys init-master` (add --production for production)",
            ) from e
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"master key file {path} is accessible to other users",
                hint=f"chmod 600 {path}",
            )
        try:
            doc = json.loads(path.read_bytes())
            if not isinstance(doc, dict):
                raise ValueError("not an object")
        except ValueError as e:
            raise ConfigurationError(f"master key file {path} is malformed") from e
        return doc

    @classmethod
    def _parse(cls, path: Path, doc: JsonObject) -> MasterKeyring:
        try:
            if doc.get("format") != _FORMAT:
                raise ValueError("unknown format")
            versions: dict[int, bytes] = {}
            retained: dict[int, dict[str, bytes]] = {}
            for entry in doc["versions"]:
                number = int(entry["version"])
                if number < 1 or number in versions or number in retained:
                    raise ValueError("bad version number")
                if "destroyed_at" in entry:
                    kept = {str(p): b64url_decode(k) for p, k in entry["retained"].items()}
                    if any(len(k) != 32 for k in kept.values()):
                        raise ValueError("bad retained key")
                    retained[number] = kept
                else:
                    versions[number] = b64url_decode(entry["key"])
            development = doc["development"]
            if not isinstance(development, bool) or not versions:
                raise ValueError("bad fields")
            if any(len(k) != 32 for k in versions.values()):
                raise ValueError("bad key")
            if retained and max(retained) > max(versions):
                raise ValueError("the newest version is destroyed")
        except (ValueError, KeyError, TypeError, AttributeError, CommonsError) as e:
            raise ConfigurationError(f"master key file {path} is malformed") from e
        return cls(path, development, versions, retained)

    @classmethod
    def load_or_create(cls, path: Path, *, now: datetime) -> MasterKeyring:
        """Load the key file, creating a development one on first run."""
        if not path.exists():
            try:
                return cls.create(path, development=True, now=now)
            except ConfigurationError:
                if not path.exists():
                    raise
                # Another process created it first: use theirs.
        return cls.load(path)

    def _update(
        self,
        change: Callable[[MasterKeyring], tuple[MasterKeyring, dict[int, dict[str, str]]]],
    ) -> MasterKeyring:
        # Read-modify-write of the file under its lock: the change applies to what the file
        # holds now, which may be newer than this object (another process rotated).
        with _file_lock(self.path):
            doc = self._read(self.path)
            ring, stamps = change(self._parse(self.path, doc))
            ring._save(doc, stamps)
        return ring

    def rotate(self, now: datetime) -> MasterKeyring:
        """Append a new version to the file and return the updated ring."""

        def change(current: MasterKeyring) -> tuple[MasterKeyring, dict[int, dict[str, str]]]:
            number = max([current.current_version, *current.retained]) + 1
            versions = {**current.versions, number: secrets.token_bytes(32)}
            ring = MasterKeyring(self.path, current.development, versions, current.retained)
            return ring, {number: {"created_at": now.isoformat()}}

        return self._update(change)

    def destroy(self, numbers: Collection[int], now: datetime) -> MasterKeyring:
        """Destroy versions ``numbers`` in the file (the rewritten file no longer holds their
        keys), keeping only their :data:`RETAINED_PURPOSES` derived keys.  Versions already
        destroyed are skipped; returns the updated ring.

        Raises :class:`ConfigurationError` for the newest version or an unknown one.
        """

        def change(current: MasterKeyring) -> tuple[MasterKeyring, dict[int, dict[str, str]]]:
            versions, retained = dict(current.versions), dict(current.retained)
            stamps: dict[int, dict[str, str]] = {}
            for number in sorted(set(numbers)):
                if number in retained:
                    continue
                if number not in versions:
                    raise ConfigurationError(f"master key version {number} does not exist")
                if number == current.current_version:
                    raise ConfigurationError("the newest master key version cannot be destroyed")
                key = versions.pop(number)
                retained[number] = {p: _derive(key, p) for p in RETAINED_PURPOSES}
                stamps[number] = {"destroyed_at": now.isoformat()}
            return MasterKeyring(self.path, current.development, versions, retained), stamps

        return self._update(change)

    def set_member(self, name: str, value: object) -> None:
        """Set a top-level member of the file other than the keys (read-modify-write under
        the file's lock).  Raises :class:`ConfigurationError` for a member the format owns."""
        if name in {"format", "development", "versions"}:
            raise ConfigurationError(f"the key file member {name!r} is not settable")
        with _file_lock(self.path):
            doc = self._read(self.path)
            doc[name] = value
            self._parse(self.path, doc)._save(doc, {})

    def _save(self, doc: JsonObject, stamps: dict[int, dict[str, str]]) -> None:
        # The file as it was (``doc``: unknown members kept), with this ring's versions.
        previous = {int(v["version"]): v for v in doc.get("versions", [])}
        entries: list[JsonObject] = []
        for number in sorted([*self.versions, *self.retained]):
            old = previous.get(number, {})
            entry: JsonObject = {"version": number}
            if number in self.versions:
                entry["key"] = b64url_encode(self.versions[number])
                entry["created_at"] = old.get("created_at", "")
            else:
                entry["created_at"] = old.get("created_at", "")
                entry["destroyed_at"] = old.get("destroyed_at", "")
                entry["retained"] = {
                    p: b64url_encode(k) for p, k in sorted(self.retained[number].items())
                }
            entry.update(stamps.get(number, {}))
            entries.append(entry)
        out = {**doc, "format": _FORMAT, "development": self.development, "versions": entries}
        write_private(self.path, json.dumps(out, indent=2).encode() + b"\n")

    # -- use -----------------------------------------------------------------------------

    def derive(self, purpose: str, version: int | None = None) -> bytes:
        """A 32-byte key for ``purpose`` derived from one version (newest by default).

        Raises :class:`ConfigurationError` for an unknown version, or a destroyed one that
        did not retain ``purpose``.
        """
        number = self.current_version if version is None else version
        key = self.versions.get(number)
        if key is not None:
            return _derive(key, purpose)
        kept = self.retained.get(number, {}).get(purpose)
        if kept is None:
            raise ConfigurationError(f"master key version {number} does not exist or was destroyed")
        return kept

    def wrap(self, plaintext: bytes, *, purpose: str, aad: bytes) -> str:
        """Encrypt ``plaintext`` under the newest version for ``purpose``, bound to ``aad``."""
        version = self.current_version
        nonce = secrets.token_bytes(12)
        ct = AESGCM(self.derive(purpose, version)).encrypt(nonce, plaintext, aad)
        return f"{_WRAP_PREFIX}.{version}.{b64url_encode(nonce)}.{b64url_encode(ct)}"

    def unwrap(self, token: str, *, purpose: str, aad: bytes) -> bytes:
        """Decrypt a value made by :meth:`wrap`.

        Raises :class:`KeyDecryptionFailed` for every failure (one opaque error).
        """
        try:
            prefix, version_text, nonce_text, ct_text = token.split(".")
            version = int(version_text)
            if prefix != _WRAP_PREFIX:
                raise ValueError("unknown wrap format")
            key = self.derive(purpose, version)
            return AESGCM(key).decrypt(b64url_decode(nonce_text), b64url_decode(ct_text), aad)
        except (ValueError, InvalidTag, CommonsError) as e:
            raise KeyDecryptionFailed() from e
