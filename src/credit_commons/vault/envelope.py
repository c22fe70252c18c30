"""The sealed-value envelope, format ``CCV1``: pure functions over bytes.

A value is sealed under a fresh 32-byte *record key*; the record key is wrapped under the
*subject key* of a (subject, purpose) and travels inside the envelope.  Both layers are
AES-256-GCM (NIST SP 800-38D) with 96-bit random nonces.  The associated data binds every
layer to the envelope header and to the canonical context (subject, purpose, record), so a
ciphertext cannot be moved to another record, subject or purpose, and its key reference
cannot be rewritten.

Layout (integers big-endian)::

    offset     size  field
    0          4     magic and format version: b"CCV1"
    4          1     L, the length of the subject key id (1-255)
    5          L     subject key id (visible ASCII)
    5+L        4     subject key version (u32, >= 1)
    ------------------------------------------------ header ends at H = 9+L
    H          12    nonce of the record-key wrap
    H+12       48    AES-256-GCM(subject key, record key) = 32-byte ciphertext + 16-byte tag
                     aad = header || context
    H+60       12    nonce of the data
    H+72       n+16  AES-256-GCM(record key, plaintext) = n-byte ciphertext + 16-byte tag
                     aad = envelope[0:H+60] || context

    context = u16 len || subject || u16 len || purpose || u16 len || record   (UTF-8)

The data layer's associated data covers every byte before the data nonce, so every bit of an
envelope is authenticated by one of the two tags.

Nonce limits (SP 800-38D §8.3): a record key encrypts exactly one value, so its nonce never
repeats; a subject key wraps one record key per sealed value, so the 2^32 random-nonce bound
applies per subject key — far beyond the values one person holds.

Master-key rotation never rewrites envelopes: they reference the subject key, and only the
subject keys are rewrapped under the new master-key version.  Destroying a subject key
(crypto-shredding) makes every envelope that references it unopenable.

Every failure to open — an unknown marker, truncation, a wrong key, a wrong context, any
flipped bit — raises the one :class:`DecryptionFailed`.
"""

from __future__ import annotations

import re
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from credit_commons.core.errors import ValidationError
from credit_commons.vault.errors import DecryptionFailed

__all__ = [
    "MAGIC",
    "EnvelopeHeader",
    "SealContext",
    "SubjectKeyRef",
    "open_envelope",
    "parse_header",
    "seal",
]

MAGIC = b"CCV1"
"""The format marker and version of every envelope this module writes."""

_KEY_LEN = 32
_NONCE_LEN = 12
_TAG_LEN = 16
_WRAPPED_LEN = _KEY_LEN + _TAG_LEN
_MAX_U32 = 0xFFFFFFFF
_MAX_FIELD = 0xFFFF
_KEY_ID = re.compile(r"[\x21-\x7e]{1,255}")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class SubjectKeyRef:
    """Which subject key (id and version) sealed an envelope: the envelope's key reference.

    Raises :class:`ValidationError` unless ``key_id`` is 1-255 visible ASCII characters and
    ``version`` is in 1 .. 2^32-1.
    """

    key_id: str
    version: int

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, str) or not _KEY_ID.fullmatch(self.key_id):
            raise ValidationError("a subject key id is 1-255 visible ASCII characters")
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise ValidationError("a subject key version is an integer")
        if not 1 <= self.version <= _MAX_U32:
            raise ValidationError("a subject key version is between 1 and 2^32-1")


@dataclass(frozen=True, slots=True)
class SealContext:
    """What a sealed value belongs to; it is bound into the associated data of both layers.

    Raises :class:`ValidationError` for an empty field, one longer than 65535 UTF-8 bytes, or
    one with no UTF-8 form (a lone surrogate).
    """

    subject: str
    purpose: str
    record: str

    def __post_init__(self) -> None:
        for name, value in (
            ("subject", self.subject),
            ("purpose", self.purpose),
            ("record", self.record),
        ):
            if not isinstance(value, str) or not value:
                raise ValidationError(f"the seal context needs a non-empty {name}")
            try:
                size = len(value.encode("utf-8"))
            except UnicodeEncodeError as e:  # lone surrogates have no UTF-8 form
                raise ValidationError(f"the seal context {name} is not valid Unicode") from e
            if size > _MAX_FIELD:
                raise ValidationError(f"the seal context {name} is too long")

    def canonical(self) -> bytes:
        """The context as length-prefixed UTF-8 fields (the associated-data form)."""
        s, p, r = self.subject.encode(), self.purpose.encode(), self.record.encode()
        return _U16.pack(len(s)) + s + _U16.pack(len(p)) + p + _U16.pack(len(r)) + r


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """The clear header of an envelope: its format and the subject key that sealed it."""

    format: bytes
    subject_key_ref: SubjectKeyRef
    size: int
    """The header's length in bytes (the offset of the record-key nonce)."""


def _header_bytes(ref: SubjectKeyRef) -> bytes:
    key_id = ref.key_id.encode("ascii")
    return MAGIC + bytes([len(key_id)]) + key_id + _U32.pack(ref.version)


def _header_size(data: bytes) -> int:
    """The header length of a ``CCV1`` envelope long enough to hold every part.

    The key reference itself is checked by the tags (it is in the associated data).
    """
    if len(data) < 5 or data[:4] != MAGIC:
        raise DecryptionFailed()
    size = 9 + data[4]
    if len(data) < size + _NONCE_LEN + _WRAPPED_LEN + _NONCE_LEN + _TAG_LEN:
        raise DecryptionFailed()
    return size


def _as_bytes(envelope: object) -> bytes:
    if isinstance(envelope, bytes):
        return envelope
    if isinstance(envelope, bytearray | memoryview):
        return bytes(envelope)
    raise DecryptionFailed()


def parse_header(envelope: bytes) -> EnvelopeHeader:
    """Read the header of an envelope without opening it, to look up its subject key.

    The header is not authenticated until :func:`open_envelope` succeeds; use it only to find
    the key.  Raises :class:`DecryptionFailed` for anything that is not a complete ``CCV1``
    envelope.
    """
    data = _as_bytes(envelope)
    size = _header_size(data)
    try:
        key_id = data[5 : size - 4].decode("ascii")
        (version,) = _U32.unpack_from(data, size - 4)
        ref = SubjectKeyRef(key_id=key_id, version=version)
    except (UnicodeDecodeError, ValidationError) as e:
        raise DecryptionFailed() from e
    return EnvelopeHeader(format=MAGIC, subject_key_ref=ref, size=size)


def seal(
    subject_key: bytes,
    plaintext: bytes,
    *,
    subject_key_ref: SubjectKeyRef,
    context: SealContext,
    rng: Callable[[int], bytes] = secrets.token_bytes,
) -> bytes:
    """Seal ``plaintext`` under a fresh record key wrapped by ``subject_key``.

    ``rng`` supplies the record key and both nonces (a parameter so vectors reproduce).
    Raises :class:`ValidationError` for a subject key that is not 32 bytes or an ``rng`` that
    returns the wrong number of bytes.
    """
    if not isinstance(subject_key, bytes) or len(subject_key) != _KEY_LEN:
        raise ValidationError("a subject key is 32 bytes")
    record_key, wrap_nonce, data_nonce = rng(_KEY_LEN), rng(_NONCE_LEN), rng(_NONCE_LEN)
    if (len(record_key), len(wrap_nonce), len(data_nonce)) != (_KEY_LEN, _NONCE_LEN, _NONCE_LEN):
        raise ValidationError("the random source returned the wrong number of bytes")
    header = _header_bytes(subject_key_ref)
    ctx = context.canonical()
    wrapped = AESGCM(subject_key).encrypt(wrap_nonce, record_key, header + ctx)
    prefix = header + wrap_nonce + wrapped
    ciphertext = AESGCM(record_key).encrypt(data_nonce, bytes(plaintext), prefix + ctx)
    return prefix + data_nonce + ciphertext


def open_envelope(envelope: bytes, subject_key: bytes, *, context: SealContext) -> bytes:
    """Open an envelope made by :func:`seal` with its subject key and its context.

    Returns the plaintext only if every check passed.  Raises :class:`DecryptionFailed` for
    every failure, whatever its cause.
    """
    data = _as_bytes(envelope)
    h = _header_size(data)
    if not isinstance(subject_key, bytes) or len(subject_key) != _KEY_LEN:
        raise DecryptionFailed()
    ctx = context.canonical()
    wrap_nonce = data[h : h + _NONCE_LEN]
    wrapped = data[h + _NONCE_LEN : h + _NONCE_LEN + _WRAPPED_LEN]
    prefix_end = h + _NONCE_LEN + _WRAPPED_LEN
    data_nonce = data[prefix_end : prefix_end + _NONCE_LEN]
    ciphertext = data[prefix_end + _NONCE_LEN :]
    try:
        record_key = AESGCM(subject_key).decrypt(wrap_nonce, wrapped, data[:h] + ctx)
        return AESGCM(record_key).decrypt(data_nonce, ciphertext, data[:prefix_end] + ctx)
    except InvalidTag as e:
        raise DecryptionFailed() from e
