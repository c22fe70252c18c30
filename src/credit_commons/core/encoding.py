"""Byte encodings and digests used across the platform: base64url, SHA-256, RFC 8785 JSON.

Canonical JSON is RFC 8785 (JCS) through the ``rfc8785`` library; it is the only way the
platform turns a JSON value into bytes that are hashed or signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

import rfc8785

from credit_commons.core.errors import ValidationError

__all__ = [
    "b64_decode",
    "b64_encode",
    "b64url_decode",
    "b64url_encode",
    "canonical_json",
    "canonical_json_reference",
    "sha256",
    "sha256_hex",
]


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 4648 §5), as JOSE uses it."""
    # What base64.urlsafe_b64encode does, without its two wrapper calls (this runs about
    # twenty times per credential issued); a property test holds the two together.
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


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


_SAFE_INTEGER = 2**53 - 1


def _plain(value: Any) -> bool:
    # True when the standard library's sorted, compact JSON *is* the RFC 8785 form: no
    # floats (their ECMAScript formatting is what rfc8785 is for), integers within
    # IEEE 754 double precision, ASCII object keys (so code-point order is UTF-16 order),
    # and exact built-in types only (no str/int subclasses such as enums).
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_SAFE_INTEGER <= value <= _SAFE_INTEGER)
    if kind is dict:
        return all(type(k) is str and k.isascii() and _plain(v) for k, v in value.items())
    if kind is list:
        return all(_plain(v) for v in value)
    return False


# One encoder: json.dumps with options builds a new one on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
# Printable ASCII except '"' and '\\': JSON writes such a string between quotes as it is.
_VERBATIM = re.compile(r"[ !#-\[\]-~]*").fullmatch


def _flat_object(value: dict[Any, Any]) -> bytes | None:
    # The RFC 8785 form of a flat object of verbatim strings and safe integers (an event
    # object reference, a score commitment, most event details), written directly; None
    # for anything else.  ASCII keys sort the same by code point as by UTF-16 unit.
    members = []
    for key in sorted(value) if all(type(k) is str for k in value) else ():
        item = value[key]
        if not _VERBATIM(key):
            return None
        if type(item) is str and _VERBATIM(item):
            members.append(f'"{key}":"{item}"')
        elif type(item) is int and -_SAFE_INTEGER <= item <= _SAFE_INTEGER:
            members.append(f'"{key}":{item}')
        else:
            return None
    if len(members) != len(value):
        return None
    return ("{" + ",".join(members) + "}").encode("ascii")


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value.

    Values without floats, with ASCII keys and safe integers (every event and log entry)
    are written by the standard library's C encoder, which gives the same bytes (RFC 8785
    §3.2.2.2 string escaping is ECMAScript's, which ``json`` matches); everything else goes
    through ``rfc8785``.  The JCS vectors and a differential property test run both.

    Raises :class:`ValidationError` for values JSON cannot represent canonically (NaN,
    infinities, integers beyond IEEE 754 double precision, non-string keys).
    """
    if type(value) is dict:
        flat = _flat_object(value)
        if flat is not None:
            return flat
    try:
        if _plain(value):
            return _ENCODER.encode(value).encode("utf-8")
    except (RecursionError, UnicodeEncodeError):
        pass  # too deep, or a lone surrogate: rfc8785 decides
    return canonical_json_reference(value)


def canonical_json_reference(value: Any) -> bytes:
    """RFC 8785 canonical bytes through ``rfc8785`` alone (what :func:`canonical_json`
    falls back to, and what tests compare its fast path with)."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as e:
        raise ValidationError(f"value has no canonical JSON form: {e}") from e
