"""Byte encodings and digests used across the platform: base64url, SHA-256, RFC 8785 JSON.

Canonical JSON is RFC 8785 (JCS) through the ``rfc8785`` library; it is the only way the
platform turns a JSON value into bytes that are hashed or signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import rfc8785

from credit_commons.core.errors import ValidationError

__all__ = [
    "b64_decode",
    "b64_encode",
    "b64url_decode",
    "b64url_encode",
    "canonical_json",
    "sha256",
    "sha256_hex",
]


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 4648 §5), as JOSE uses it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    """Decode unpadded base64url strictly.

    Raises :class:`ValidationError` on padding, characters outside the alphabet, an
    impossible length, or non-zero trailing bits (so one value has exactly one encoding).
    """
    raw = text.encode("ascii") if isinstance(text, str) else text
    if b"=" in raw or len(raw) % 4 == 1:
        raise ValidationError("malformed base64url value")
    try:
        decoded = base64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValidationError("malformed base64url value") from e
    if b64url_encode(decoded).encode("ascii") != raw:
        raise ValidationError("non-canonical base64url value")
    return decoded


def b64_encode(data: bytes) -> str:
    """Padded standard base64 (RFC 4648 §4)."""
    return base64.b64encode(data).decode("ascii")


def b64_decode(text: str | bytes) -> bytes:
    """Decode padded standard base64 strictly; raises :class:`ValidationError`."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValidationError("malformed base64 value") from e
    if base64.b64encode(decoded) != raw:
        raise ValidationError("non-canonical base64 value")
    return decoded


def sha256(data: bytes) -> bytes:
    """SHA-256 digest (32 bytes)."""
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    """SHA-256 digest as lower-case hex."""
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value.

    Raises :class:`ValidationError` for values JSON cannot represent canonically (NaN,
    infinities, integers beyond IEEE 754 double precision, non-string keys).
    """
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as e:
        raise ValidationError(f"value has no canonical JSON form: {e}") from e
