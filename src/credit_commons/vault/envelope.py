"""The sealed-value envelope, format ``CCV1``: pure functions over bytes.

A value is sealed with AES-256-GCM (NIST SP 800-38D) under the *subject key* of its
(subject, purpose), with a 96-bit random nonce.  The associated data binds the ciphertext
to the envelope header and to the canonical context (subject, purpose, record), so it
cannot be moved to another record, subject or purpose, and its key reference cannot be
rewritten.

Layout (integers big-endian)::

    offset     size  field
    0          4     magic and format version: b"CCV1"
    4          1     L, the length of the subject key id (1-255)
    5          L     subject key id (visible ASCII)
    5+L        4     subject key version (u32, >= 1)
    ------------------------------------------------ header ends at H = 9+L
    H          12    nonce
    H+12       n+16  AES-256-GCM(subject key, plaintext): n-byte ciphertext + 16-byte tag
                     aad = header || context

    context = subject || 0x0A || purpose || 0x0A || record   (UTF-8; no field may contain a
              newline, so the encoding is unambiguous)

Every byte of an envelope is authenticated: the header and context through the associated
data, the nonce and ciphertext through the tag.

The subject key is *referenced*, not carried: the key itself, wrapped by the KMS master key,
is stored once per (subject, purpose).  That is what makes crypto-shredding work — deleting
the stored key makes every envelope that references it unopenable — whereas a master-wrapped
key inside each envelope would stay unwrappable for as long as the master key exists
(docs/privacy.md).  For the same reason master-key rotation never rewrites envelopes; only
subject keys are rewrapped.

Nonce limits (SP 800-38D §8.3): random 96-bit nonces allow 2^32 seals per subject key, far
beyond the values one person holds for one purpose.

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
    "context_bytes",
    "key_id_of",
    "open_envelope",
    "open_parsed",
    "parse_header",
    "seal",
]

MAGIC = b"CCV1"
"""The format marker and version of every envelope this module writes."""

_KEY_LEN = 32
_NONCE_LEN = 12
_TAG_LEN = 16
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
    """What a sealed value belongs to; it is bound into the associated data.

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
            if "\n" in value:
                raise ValidationError(f"the seal context {name} must not contain a newline")
            try:
                size = len(value.encode("utf-8"))
            except UnicodeEncodeError as e:  # lone surrogates have no UTF-8 form
                raise ValidationError(f"the seal context {name} is not valid Unicode") from e
            if size > _MAX_FIELD:
                raise ValidationError(f"the seal context {name} is too long")

    def canonical(self) -> bytes:
        """The context in its associated-data form (fields joined by newlines)."""
        return context_bytes(self.subject, self.purpose, self.record)


def context_bytes(subject: str, purpose: str, record: str) -> bytes:
    """The canonical context without building a :class:`SealContext`.

    Raises :class:`ValidationError` for an empty field, a newline in a field, text with no
    UTF-8 form, or a context longer than three maximal fields.
    """
    if not subject or not purpose or not record:
        raise ValidationError("a seal context field is empty")
    if "\n" in subject or "\n" in purpose or "\n" in record:
        raise ValidationError("a seal context field contains a newline")
    try:
        out = f"{subject}\n{purpose}\n{record}".encode()
    except (UnicodeEncodeError, AttributeError) as e:
        raise ValidationError("the seal context is not valid Unicode text") from e
    if len(out) > 3 * _MAX_FIELD + 2:
        raise ValidationError("the seal context is too long")
    return out


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """The clear header of an envelope: its format and the subject key that sealed it."""

    format: bytes
    subject_key_ref: SubjectKeyRef
    size: int
    """The header's length in bytes (the offset of the nonce)."""


def _header_bytes(ref: SubjectKeyRef) -> bytes:
    key_id = ref.key_id.encode("ascii")
    return MAGIC + bytes([len(key_id)]) + key_id + _U32.pack(ref.version)


def _header_size(data: bytes) -> int:
    """The header length of a ``CCV1`` envelope long enough to hold every part.

    The key reference itself is checked by the tag (it is in the associated data).
    """
    if len(data) < 5 or data[:4] != MAGIC:
        raise DecryptionFailed()
    size = 9 + data[4]
    if len(data) < size + _NONCE_LEN + _TAG_LEN:
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


def key_id_of(envelope: bytes) -> str:
    """The subject key id an envelope names (the hot path of :func:`parse_header`).

    Unauthenticated until the envelope opens.  Raises :class:`DecryptionFailed`.
    """
    if not isinstance(envelope, bytes) or len(envelope) < 5 or envelope[:4] != MAGIC:
        raise DecryptionFailed()
    try:
        return envelope[5 : 5 + envelope[4]].decode("ascii")
    except UnicodeDecodeError as e:
        raise DecryptionFailed() from e


def _cipher(subject_key: bytes | AESGCM) -> AESGCM:
    if isinstance(subject_key, AESGCM):
        return subject_key
    if not isinstance(subject_key, bytes) or len(subject_key) != _KEY_LEN:
        raise ValidationError("a subject key is 32 bytes")
    return AESGCM(subject_key)


def seal(
    subject_key: bytes | AESGCM,
    plaintext: bytes,
    *,
    subject_key_ref: SubjectKeyRef,
    context: SealContext,
    rng: Callable[[int], bytes] = secrets.token_bytes,
) -> bytes:
    """Seal ``plaintext`` under ``subject_key`` (32 bytes, or a ready ``AESGCM``).

    ``rng`` supplies the nonce (a parameter so vectors reproduce).  Raises
    :class:`ValidationError` for a subject key that is not 32 bytes or an ``rng`` that returns
    the wrong number of bytes.
    """
    cipher = _cipher(subject_key)
    nonce = rng(_NONCE_LEN)
    if len(nonce) != _NONCE_LEN:
        raise ValidationError("the random source returned the wrong number of bytes")
    header = _header_bytes(subject_key_ref)
    return header + nonce + cipher.encrypt(nonce, bytes(plaintext), header + context.canonical())


def open_envelope(
    envelope: bytes, subject_key: bytes | AESGCM, *, context: SealContext | bytes
) -> bytes:
    """Open an envelope made by :func:`seal` with its subject key and its context.

    ``context`` may be given as its canonical bytes (:meth:`SealContext.canonical`), which
    callers on a hot path precompute.  Returns the plaintext only if every check passed.
    Raises :class:`DecryptionFailed` for every failure, whatever its cause.
    """
    data = envelope if type(envelope) is bytes else _as_bytes(envelope)
    if len(data) < 5 or data[:4] != MAGIC:
        raise DecryptionFailed()
    h = 9 + data[4]
    if len(data) < h + _NONCE_LEN + _TAG_LEN:
        raise DecryptionFailed()
    if type(subject_key) is AESGCM:
        cipher = subject_key
    else:
        try:
            cipher = _cipher(subject_key)
        except ValidationError as e:
            raise DecryptionFailed() from e
    ctx = context if type(context) is bytes else context.canonical()  # type: ignore[union-attr]
    return open_parsed(data, h, cipher, ctx)


def open_parsed(data: bytes, header_size: int, cipher: AESGCM, context: bytes) -> bytes:
    """Open an envelope whose header the caller has already read (the vault's hot path).

    ``header_size`` is ``9 + data[4]`` of a ``CCV1`` envelope; everything else is checked by
    the tag.  Raises :class:`DecryptionFailed`.
    """
    h = header_size
    if len(data) < h + _NONCE_LEN + _TAG_LEN:
        raise DecryptionFailed()
    try:
        return cipher.decrypt(data[h : h + _NONCE_LEN], data[h + _NONCE_LEN :], data[:h] + context)
    except InvalidTag as e:
        raise DecryptionFailed() from e
