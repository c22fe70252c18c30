"""The local master key file: versioned 256-bit keys in a 0600 JSON file.

The file is the root of the embedded key hierarchy: private signing keys in the database
are encrypted under a key derived from it (HKDF-SHA-256, one label per purpose), and in
development the pseudonymisation pepper is derived from it too.  It is created on first run
with mode 0600 and marked ``"development": true``; production refuses such a file and never
creates one implicitly (``commons keys init-master --production`` makes a production file).
Rotation appends a new version: new encryptions use the newest, old versions keep opening.

File format (``commons-master-key/v1``)::

    {"format": "commons-master-key/v1", "development": true,
     "versions": [{"version": 1, "key": "<base64url 32 bytes>", "created_at": "…"}]}

Wrapped values are ``mk1.<version>.<base64url nonce>.<base64url ciphertext>``: AES-256-GCM
with associated data that binds each ciphertext to what it protects, so it cannot be moved.
"""

from __future__ import annotations

import json
import secrets
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.core.errors import CommonsError, ConfigurationError
from credit_commons.core.files import write_private
from credit_commons.keys.errors import KeyDecryptionFailed

__all__ = ["MasterKeyring"]

_FORMAT = "commons-master-key/v1"
_WRAP_PREFIX = "mk1"


def _derive(key: bytes, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"commons/{purpose}".encode()
    ).derive(key)


@dataclass(frozen=True)
class MasterKeyring:
    """The versioned master keys from one key file."""

    path: Path
    development: bool
    versions: dict[int, bytes] = field(repr=False)

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
        if path.exists():
            raise ConfigurationError(f"master key file {path} already exists")
        ring = cls(path, development, {1: secrets.token_bytes(32)})
        ring._save({1: now})
        return ring

    @classmethod
    def load(cls, path: Path) -> MasterKeyring:
        """Load an existing key file.

        Raises :class:`ConfigurationError` if it is missing, readable by group or others,
        or malformed.
        """
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
            if doc.get("format") != _FORMAT:
                raise ValueError("unknown format")
            versions = {int(v["version"]): b64url_decode(v["key"]) for v in doc["versions"]}
            development = doc["development"]
            if not isinstance(development, bool) or not versions:
                raise ValueError("bad fields")
            if any(len(k) != 32 or n < 1 for n, k in versions.items()):
                raise ValueError("bad key")
        except (ValueError, KeyError, TypeError, CommonsError) as e:
            raise ConfigurationError(f"master key file {path} is malformed") from e
        return cls(path, development, versions)

    @classmethod
    def load_or_create(cls, path: Path, *, now: datetime) -> MasterKeyring:
        """Load the key file, creating a development one on first run."""
        if not path.exists():
            return cls.create(path, development=True, now=now)
        return cls.load(path)

    def rotate(self, now: datetime) -> MasterKeyring:
        """Append a new version to the file and return the updated ring."""
        versions = dict(self.versions)
        versions[self.current_version + 1] = secrets.token_bytes(32)
        ring = MasterKeyring(self.path, self.development, versions)
        ring._save({self.current_version + 1: now})
        return ring

    def _save(self, created: dict[int, datetime]) -> None:
        previous: dict[int, str] = {}
        if self.path.exists():
            old = json.loads(self.path.read_bytes())
            previous = {int(v["version"]): v.get("created_at", "") for v in old["versions"]}
        doc = {
            "format": _FORMAT,
            "development": self.development,
            "versions": [
                {
                    "version": n,
                    "key": b64url_encode(k),
                    "created_at": created[n].isoformat() if n in created else previous.get(n, ""),
                }
                for n, k in sorted(self.versions.items())
            ],
        }
        write_private(self.path, json.dumps(doc, indent=2).encode() + b"\n")

    # -- use -----------------------------------------------------------------------------

    def derive(self, purpose: str, version: int | None = None) -> bytes:
        """A 32-byte key for ``purpose`` derived from one version (newest by default)."""
        return _derive(self.versions[version or self.current_version], purpose)

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
            if prefix != _WRAP_PREFIX or version not in self.versions:
                raise ValueError("unknown wrap version")
            key = self.derive(purpose, version)
            return AESGCM(key).decrypt(b64url_decode(nonce_text), b64url_decode(ct_text), aad)
        except (ValueError, InvalidTag, CommonsError) as e:
            raise KeyDecryptionFailed() from e
