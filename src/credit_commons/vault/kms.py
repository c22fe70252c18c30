"""The KMS interface and the embedded :class:`LocalKms`.

A KMS holds the versioned *master key* (the key-encryption key, KEK) that wraps subject keys,
and the *pepper* key of identifier pseudonyms.  Key material never leaves a KMS through this
interface: callers get wrapped blobs and MACs.  Two implementations: :class:`LocalKms` over
the local master key file (the embedded default) and ``Pkcs11Kms`` over any PKCS#11 token
(``vault/pkcs11.py``).

Versions: :meth:`Kms.wrap` always uses the newest version; :meth:`Kms.unwrap` opens any
version at or above the *minimum decryption version*, so an operator rotates, rewraps the
subject keys (``commons vault rewrap``), then retires the old versions.  An erasure epoch
(``privacy/epochs.py``) goes one step further and *destroys* them
(:meth:`Kms.destroy_versions_below`): the key is gone from the KMS, so no backup of the
database can ever have its subject keys unwrapped under it again.

Pseudonym MACs: ``hmac(data, label=L)`` is HMAC-SHA-256 (RFC 2104) of ``L || 0x00 || data``
under the pepper; labels are short lower-case names without NUL, so the framing is
unambiguous.  The pepper fingerprint is the first 16 bytes, base64url, of the HMAC of the
fixed message ``b"commons pepper fingerprint"`` — it contains no NUL, so it never equals a
labelled MAC — which is also what :meth:`Pseudonymizer.fingerprint` computes for the same
pepper.
"""

from __future__ import annotations

import hashlib
import hmac as hmac_lib
import json
import re
import secrets
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from credit_commons.core.clock import Clock, SystemClock
from credit_commons.core.encoding import JsonObject, b64url_encode
from credit_commons.core.errors import ValidationError
from credit_commons.core.files import write_private
from credit_commons.keys import MasterKeyring
from credit_commons.vault.errors import DecryptionFailed, KeyVersionRetired, KmsConfigInvalid

__all__ = [
    "PEPPER_FINGERPRINT_MESSAGE",
    "Kms",
    "LocalKms",
    "WrappedKey",
    "check_min_version",
    "hmac_message",
    "wrap_aad",
]

PEPPER_FINGERPRINT_MESSAGE = b"commons pepper fingerprint"
"""The fixed message whose MAC fingerprints a pepper (no NUL: never a labelled message)."""

_LABEL = re.compile(r"[a-z][a-z0-9_.:/-]{0,63}")
_BLOB_FORMAT = 1
_NONCE_LEN = 12
_KEK_PURPOSE = "vault/kek"
_PEPPER_PURPOSE = "pseudonym-pepper"
_STATE_MEMBER = "min_decrypt_version"


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A key wrapped by a KMS master key: which KEK, which version, and the opaque blob.

    Raises :class:`ValidationError` for an empty ``kek_id``, a version below 1 or a blob
    that is not bytes.
    """

    kek_id: str
    version: int
    blob: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.kek_id, str) or not self.kek_id:
            raise ValidationError("a wrapped key names its KEK")
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise ValidationError("a wrapped key version is an integer")
        if self.version < 1 or not isinstance(self.blob, bytes):
            raise ValidationError("a wrapped key has a version >= 1 and a bytes blob")


class Kms(Protocol):
    """A key-management service: a versioned master key and a pseudonym pepper."""

    @property
    def kek_id(self) -> str:
        """A stable name of this KMS's master key (the same for all its versions)."""
        ...

    @property
    def min_decrypt_version(self) -> int:
        """The oldest master-key version :meth:`unwrap` still opens."""
        ...

    def current_version(self) -> int:
        """The newest master-key version: the one :meth:`wrap` uses."""
        ...

    def versions(self) -> list[int]:
        """Every master-key version held, oldest first."""
        ...

    def wrap(self, plaintext: bytes, *, aad: bytes) -> WrappedKey:
        """Encrypt a key under the newest version, bound to ``aad``.

        Raises ``KmsUnavailable`` when the KMS cannot be reached.
        """
        ...

    def unwrap(self, wrapped: WrappedKey, *, aad: bytes) -> bytes:
        """Decrypt a key made by :meth:`wrap` with the same ``aad``.

        Raises :class:`KeyVersionRetired` below :attr:`min_decrypt_version`,
        :class:`DecryptionFailed` for every other failure to open, ``KmsUnavailable`` when
        the KMS cannot be reached.
        """
        ...

    def rotate(self) -> int:
        """Add a new master-key version and return it; later wraps use it."""
        ...

    def set_min_decrypt_version(self, version: int) -> None:
        """Persist the minimum decryption version (it only goes up: retiring is one-way).

        Raises :class:`KmsConfigInvalid` for a version outside 1 .. :meth:`current_version`
        or below the current minimum.
        """
        ...

    def destroy_versions_below(self, version: int) -> list[int]:
        """Retire, then destroy inside the KMS, every master-key version below ``version``;
        returns the versions destroyed now (none when they already were: idempotent).

        Raises :class:`KmsConfigInvalid` for a version outside 1 .. :meth:`current_version`,
        ``KmsUnavailable`` when the KMS cannot be reached.
        """
        ...

    def refresh(self) -> None:
        """Reload the versions (another process rotated, retired or destroyed some).

        Raises ``ConfigurationError`` or ``KmsUnavailable`` when the KMS cannot be read.
        """
        ...

    def hmac(self, data: bytes, *, label: str) -> bytes:
        """HMAC-SHA-256 of ``label || 0x00 || data`` under the pepper (32 bytes).

        Raises :class:`ValidationError` for a malformed label.
        """
        ...

    def pepper_fingerprint(self) -> str:
        """A public fingerprint of the pepper, to detect that it changed."""
        ...


def hmac_message(data: bytes, label: str) -> bytes:
    """The message a labelled pseudonym MAC covers: ``label || 0x00 || data``.

    Raises :class:`ValidationError` unless ``label`` is 1-64 characters of ``a-z0-9_.:/-``
    starting with a letter, and ``data`` is bytes.
    """
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise ValidationError("an HMAC label is a short lower-case name")
    if not isinstance(data, bytes | bytearray):
        raise ValidationError("HMAC data must be bytes")
    return label.encode("ascii") + b"\x00" + bytes(data)


def wrap_aad(kek_id: str, version: int, aad: bytes) -> bytes:
    """The associated data of a wrap: the KEK id and version, then the caller's ``aad``.

    Binding the version means a blob cannot be relabelled as another version's.
    """
    return b"commons-kms/v1\x00" + kek_id.encode() + b"\x00" + struct.pack(">I", version) + aad


def check_min_version(version: int, current: int) -> int:
    """Return ``version`` if it is a valid minimum decryption version; raises
    :class:`KmsConfigInvalid` otherwise."""
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= current:
        raise KmsConfigInvalid(f"the minimum decryption version must be between 1 and {current}")
    return version


class LocalKms:
    """The embedded KMS over the local master key file.

    The KEK of version *n* is HKDF-SHA-256 of master version *n* (label ``vault/kek``).  A
    wrapped blob is ``0x01 || nonce(12) || AES-256-GCM(KEK_n, key)`` with associated data
    :func:`wrap_aad`.  The pepper is HKDF of master version 1 (label ``pseudonym-pepper``),
    so it survives rotation, unless ``pepper`` (at least 32 bytes) is given explicitly — as
    production does, so that pseudonyms do not depend on the key file.

    The minimum decryption version is stored in the key file itself (member
    ``min_decrypt_version``), or in ``state_file`` (a 0600 JSON file) when one is given.
    Destroying a version removes its key from the key file (``MasterKeyring.destroy``,
    which keeps the pepper and the KMS id derived from version 1).

    Raises :class:`KmsConfigInvalid` for a short pepper or an unreadable state.
    """

    def __init__(
        self,
        ring: MasterKeyring,
        state_file: Path | None = None,
        *,
        pepper: bytes | None = None,
        clock: Clock | None = None,
    ) -> None:
        if pepper is not None and len(pepper) < 32:
            raise KmsConfigInvalid("the pseudonym pepper must be at least 32 bytes")
        self._lock = threading.RLock()
        self._ring = ring
        self._state_file = state_file
        self._clock = clock or SystemClock()
        self._pepper = pepper if pepper is not None else ring.derive(_PEPPER_PURPOSE, version=1)
        fingerprint = hashlib.sha256(ring.derive("vault/kek-id", version=1)).digest()
        self._kek_id = "local:" + b64url_encode(fingerprint[:12])
        self._keks: dict[int, AESGCM] = {}
        self._min = self._read_state()

    def __repr__(self) -> str:  # never show key material
        return f"LocalKms({self._kek_id}, v{self.current_version()})"

    # -- state ---------------------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self._state_file or self._ring.path

    def _read_doc(self) -> JsonObject:
        path = self._state_path
        if not path.exists():
            return {}
        try:
            doc = json.loads(path.read_bytes())
            if not isinstance(doc, dict):
                raise TypeError("not an object")
        except (ValueError, TypeError, OSError) as e:
            raise KmsConfigInvalid(f"KMS state in {path} is unreadable") from e
        return doc

    def _read_state(self) -> int:
        value = self._read_doc().get(_STATE_MEMBER, 1)
        try:
            return check_min_version(value, self._ring.current_version)
        except KmsConfigInvalid as e:
            raise KmsConfigInvalid(f"KMS state in {self._state_path} is invalid") from e

    def _write_state(self, version: int) -> None:
        if self._state_file is None:
            self._ring.set_member(_STATE_MEMBER, version)
            return
        doc = self._read_doc()
        doc[_STATE_MEMBER] = version
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self._state_path, json.dumps(doc, indent=2).encode() + b"\n")

    def refresh(self) -> None:
        """Reload the key file and the state (after another process rotated, retired or
        destroyed versions); forgets the keys of versions the file no longer holds.

        Raises ``ConfigurationError`` when the key file no longer loads.
        """
        with self._lock:
            self._ring = MasterKeyring.load(self._ring.path)
            self._min = self._read_state()
            self._keks = {v: k for v, k in self._keks.items() if v in self._ring.versions}

    # -- Kms -----------------------------------------------------------------------------

    @property
    def kek_id(self) -> str:
        """``local:`` and a fingerprint of master version 1 (stable across rotation)."""
        return self._kek_id

    @property
    def min_decrypt_version(self) -> int:
        """The oldest version :meth:`unwrap` opens."""
        return self._min

    def current_version(self) -> int:
        """The newest master-key version."""
        return self._ring.current_version

    def versions(self) -> list[int]:
        """Every version in the key file, oldest first."""
        return sorted(self._ring.versions)

    def _kek(self, version: int) -> AESGCM:
        kek = self._keks.get(version)
        if kek is None:
            kek = AESGCM(self._ring.derive(_KEK_PURPOSE, version))
            with self._lock:
                self._keks[version] = kek
        return kek

    def wrap(self, plaintext: bytes, *, aad: bytes) -> WrappedKey:
        """Encrypt ``plaintext`` under the newest KEK, bound to ``aad``.

        Each KEK version takes at most 2^32 wraps with random 96-bit nonces
        (NIST SP 800-38D §8.3); rotate long before.
        """
        version = self._ring.current_version
        nonce = secrets.token_bytes(_NONCE_LEN)
        ct = self._kek(version).encrypt(nonce, plaintext, wrap_aad(self._kek_id, version, aad))
        return WrappedKey(self._kek_id, version, bytes([_BLOB_FORMAT]) + nonce + ct)

    def unwrap(self, wrapped: WrappedKey, *, aad: bytes) -> bytes:
        """Decrypt a key wrapped by this KMS.

        Raises :class:`KeyVersionRetired` below the minimum decryption version and
        :class:`DecryptionFailed` for every other failure.
        """
        if wrapped.kek_id != self._kek_id:
            raise DecryptionFailed()
        if wrapped.version < self._min:
            raise KeyVersionRetired(f"master key version {wrapped.version} is retired")
        if wrapped.version not in self._ring.versions:
            self.refresh()  # another process may have rotated since we loaded the file
            if wrapped.version not in self._ring.versions:
                raise DecryptionFailed()
        blob = wrapped.blob
        if len(blob) < 1 + _NONCE_LEN + 16 or blob[0] != _BLOB_FORMAT:
            raise DecryptionFailed()
        try:
            return self._kek(wrapped.version).decrypt(
                blob[1 : 1 + _NONCE_LEN],
                blob[1 + _NONCE_LEN :],
                wrap_aad(self._kek_id, wrapped.version, aad),
            )
        except InvalidTag as e:
            raise DecryptionFailed() from e

    def rotate(self) -> int:
        """Append a master-key version to the key file (mode 0600) and return it."""
        with self._lock:
            self._ring = self._ring.rotate(self._clock.now())
            return self._ring.current_version

    def set_min_decrypt_version(self, version: int) -> None:
        """Persist the minimum decryption version (in the key file or the state file).

        Raises :class:`KmsConfigInvalid` for a version outside 1 .. current, or below the
        current minimum (the minimum only goes up).
        """
        with self._lock:
            check_min_version(version, self._ring.current_version)
            if version < self._min:
                raise KmsConfigInvalid(
                    f"the minimum decryption version is {self._min} and only goes up"
                )
            self._write_state(version)
            self._min = version

    def destroy_versions_below(self, version: int) -> list[int]:
        """Retire every version below ``version``, then remove their keys from the key file
        (``MasterKeyring.destroy``); returns the versions destroyed now.

        Raises :class:`KmsConfigInvalid` for a version outside 1 .. current.
        """
        with self._lock:
            self.refresh()
            check_min_version(version, self._ring.current_version)
            # Retired first: a crash between the two steps leaves versions that are refused
            # but still held, and the next run destroys them.
            if version > self._min:
                self.set_min_decrypt_version(version)
            doomed = sorted(v for v in self._ring.versions if v < version)
            if doomed:
                self._ring = self._ring.destroy(doomed, self._clock.now())
            self._keks = {v: k for v, k in self._keks.items() if v >= version}
            return doomed

    def hmac(self, data: bytes, *, label: str) -> bytes:
        """HMAC-SHA-256 of ``label || 0x00 || data`` under the pepper.

        Raises :class:`ValidationError` for a malformed label.
        """
        return hmac_lib.digest(self._pepper, hmac_message(data, label), "sha256")

    def pepper_fingerprint(self) -> str:
        """base64url of the first 16 bytes of the HMAC of the fingerprint message."""
        return b64url_encode(
            hmac_lib.digest(self._pepper, PEPPER_FINGERPRINT_MESSAGE, "sha256")[:16]
        )
