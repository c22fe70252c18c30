"""Signing keys and the JOSE algorithm policy.

Two key types: Ed25519 (the default) and ECDSA P-256.  The JOSE ``alg`` the platform emits is
``EdDSA`` for Ed25519 and ``ES256`` for P-256; it accepts ``EdDSA``, the fully specified
``Ed25519`` (RFC 9864) and ``ES256``, and rejects every other value — ``none``, HMAC, RSA and
anything unknown — and any ``alg`` that does not match the key's type.

This module is a thin safe layer over ``cryptography``: ES256 signatures are the fixed-size
``r || s`` form of RFC 7518 §3.4, not DER.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from credit_commons.keys.errors import (
    AlgorithmNotAllowed,
    KeyInvalid,
    KeyTypeMismatch,
    SignatureInvalid,
)

__all__ = [
    "ACCEPTED_ALGS",
    "KeyType",
    "PrivateKey",
    "PublicKey",
    "Signer",
    "check_alg",
]


class KeyType(StrEnum):
    """The signing key types the platform supports."""

    ED25519 = "Ed25519"
    P256 = "P-256"

    @property
    def jose_alg(self) -> str:
        """The JOSE ``alg`` the platform emits for this key type."""
        return "EdDSA" if self is KeyType.ED25519 else "ES256"


# RFC 7518 §3.1, RFC 8037 §3.1, RFC 9864 §2: the only accepted values and their key types.
ACCEPTED_ALGS: dict[str, KeyType] = {
    "EdDSA": KeyType.ED25519,
    "Ed25519": KeyType.ED25519,
    "ES256": KeyType.P256,
}

_P256_SIG_LEN = 64


def check_alg(alg: object, key_type: KeyType) -> None:
    """Check a JOSE ``alg`` against the allow-list and the key's type.

    Raises :class:`AlgorithmNotAllowed` for anything outside ``EdDSA``/``Ed25519``/``ES256``
    and :class:`KeyTypeMismatch` when the ``alg`` belongs to another key type.
    """
    if not isinstance(alg, str) or alg not in ACCEPTED_ALGS:
        raise AlgorithmNotAllowed(f"alg {alg!r} is not accepted" if isinstance(alg, str) else None)
    if ACCEPTED_ALGS[alg] is not key_type:
        raise KeyTypeMismatch(f"alg {alg} cannot be used with a {key_type} key")


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A public verification key (Ed25519 or P-256) that exists only if it is valid."""

    key_type: KeyType
    _key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey

    @classmethod
    def from_cryptography(cls, key: object) -> PublicKey:
        """Wrap a ``cryptography`` public key; raises :class:`KeyInvalid` for other types."""
        if isinstance(key, ed25519.Ed25519PublicKey):
            return cls(KeyType.ED25519, key)
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            return cls(KeyType.P256, key)
        raise KeyInvalid("only Ed25519 and P-256 public keys are supported")

    @classmethod
    def from_raw(cls, key_type: KeyType, data: bytes) -> PublicKey:
        """Parse raw bytes: 32 for Ed25519, a SEC1 point (33 or 65) for P-256.

        Raises :class:`KeyInvalid` for a wrong length or a point not on the curve.
        """
        try:
            if key_type is KeyType.ED25519:
                if len(data) != 32:
                    raise KeyInvalid("an Ed25519 public key is 32 bytes")
                return cls(key_type, ed25519.Ed25519PublicKey.from_public_bytes(data))
            return cls(key_type, ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data))
        except ValueError as e:
            raise KeyInvalid("invalid public key bytes") from e

    @property
    def cryptography_key(self) -> ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey:
        """The underlying ``cryptography`` object."""
        return self._key

    def raw(self, *, compressed: bool = True) -> bytes:
        """Raw bytes: 32 for Ed25519; the SEC1 point for P-256 (compressed by default)."""
        if isinstance(self._key, ed25519.Ed25519PublicKey):
            return self._key.public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        fmt = (
            serialization.PublicFormat.CompressedPoint
            if compressed
            else serialization.PublicFormat.UncompressedPoint
        )
        return self._key.public_bytes(serialization.Encoding.X962, fmt)

    def verify(self, alg: object, data: bytes, signature: bytes) -> None:
        """Verify ``signature`` over ``data`` with a JOSE ``alg``.

        Returns only if the signature is valid.  Raises :class:`AlgorithmNotAllowed`,
        :class:`KeyTypeMismatch` or :class:`SignatureInvalid`.
        """
        check_alg(alg, self.key_type)
        try:
            if isinstance(self._key, ed25519.Ed25519PublicKey):
                self._key.verify(signature, data)
                return
            # RFC 7518 §3.4: the signature is r || s, each 32 bytes big-endian.
            if len(signature) != _P256_SIG_LEN:
                raise SignatureInvalid("an ES256 signature is 64 bytes")
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            self._key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as e:
            raise SignatureInvalid() from e

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and (self.key_type, self.raw()) == (
            other.key_type,
            other.raw(),
        )

    def __hash__(self) -> int:
        return hash((self.key_type, self.raw()))


class Signer(Protocol):
    """Anything that signs with one key: an in-memory key, a key-store key, an HSM key."""

    @property
    def key_type(self) -> KeyType:
        """The key's type."""
        ...

    @property
    def alg(self) -> str:
        """The JOSE ``alg`` of the signatures this signer makes."""
        ...

    @property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Sign ``data``; ES256 signatures are ``r || s`` (64 bytes)."""
        ...


_PER_THREAD_MIN = 32  # below this a thread's hand-off costs more than it saves
_pools: dict[int, ThreadPoolExecutor] = {}  # by process id
_pool_lock = threading.Lock()


def _signing_threads() -> int:
    return os.cpu_count() or 1


def _signing_pool() -> ThreadPoolExecutor:
    # One pool per process: a forked child does not inherit the parent's threads, so it
    # makes its own instead of queueing work for threads that do not exist.
    with _pool_lock:
        pool = _pools.get(os.getpid())
        if pool is None:
            workers = max(1, _signing_threads() - 1)
            pool = _pools[os.getpid()] = ThreadPoolExecutor(workers, thread_name_prefix="sign")
        return pool


class PrivateKey:
    """An in-memory private signing key; it implements :class:`Signer`."""

    __slots__ = ("_key", "_public", "key_type")

    def __init__(self, key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> None:
        if isinstance(key, ed25519.Ed25519PrivateKey):
            self.key_type = KeyType.ED25519
        elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            self.key_type = KeyType.P256
        else:
            raise KeyInvalid("only Ed25519 and P-256 private keys are supported")
        self._key = key
        self._public = PublicKey.from_cryptography(key.public_key())

    def __repr__(self) -> str:  # never show key material
        return f"PrivateKey({self.key_type})"

    @classmethod
    def generate(cls, key_type: KeyType = KeyType.ED25519) -> PrivateKey:
        """A fresh random key of ``key_type``."""
        if key_type is KeyType.ED25519:
            return cls(ed25519.Ed25519PrivateKey.generate())
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_raw(cls, key_type: KeyType, data: bytes) -> PrivateKey:
        """An Ed25519 key from its 32-byte seed, or a P-256 key from its 32-byte scalar.

        Raises :class:`KeyInvalid` for a wrong length or an out-of-range scalar.
        """
        if len(data) != 32:
            raise KeyInvalid("a private key is 32 bytes")
        try:
            if key_type is KeyType.ED25519:
                return cls(ed25519.Ed25519PrivateKey.from_private_bytes(data))
            return cls(ec.derive_private_key(int.from_bytes(data, "big"), ec.SECP256R1()))
        except ValueError as e:
            raise KeyInvalid("invalid private key bytes") from e

    @property
    def alg(self) -> str:
        """The JOSE ``alg`` this key emits (``EdDSA`` or ``ES256``)."""
        return self.key_type.jose_alg

    @property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        return self._public

    @property
    def cryptography_key(self) -> ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey:
        """The underlying ``cryptography`` object (for libraries that need it)."""
        return self._key

    def raw(self) -> bytes:
        """The 32-byte Ed25519 seed or P-256 scalar.  Handle with care."""
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        return self._key.private_numbers().private_value.to_bytes(32, "big")

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (Ed25519, or ES256 as ``r || s``)."""
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(data)
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        """``[self.sign(m) for m in messages]``, with a large batch split over the machine's
        cores: ``cryptography`` releases the GIL while it signs, so each thread signs its
        share at full speed (a bulk issuance signs its whole batch at once)."""
        parts = min(_signing_threads(), len(messages) // _PER_THREAD_MIN)
        if parts < 2:
            return [self.sign(m) for m in messages]
        size = -(-len(messages) // parts)
        chunks = [messages[lo : lo + size] for lo in range(0, len(messages), size)]
        pool = _signing_pool()
        futures = [pool.submit(self._sign_chunk, chunk) for chunk in chunks[1:]]
        out = self._sign_chunk(chunks[0])  # this thread signs the first share itself
        for future in futures:
            out += future.result()
        return out

    def _sign_chunk(self, messages: Sequence[bytes]) -> list[bytes]:
        return [self.sign(m) for m in messages]
