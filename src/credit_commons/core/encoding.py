"""Byte encodings and digests used across the platform: base64url, base64, hex, SHA-256,
JSON in (I-JSON, RFC 7493) and out (RFC 8785).

Canonical JSON is RFC 8785 (JCS) through the ``rfc8785`` library; it is the only way the
platform turns a JSON value into bytes that are hashed or signed.

Every decoder here takes any ``str`` (and ``bytes`` where it accepts bytes) and either
returns a value or raises :class:`ValidationError`: input from a request reaches them as it
came, and anything else they raised would surface as a 500 (a property test feeds them
arbitrary text).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from typing import Any, TypeAlias

import rfc8785

from credit_commons.core.errors import ValidationError

__all__ = [
    "JsonObject",
    "b64_decode",
    "b64_encode",
    "b64url_decode",
    "b64url_encode",
    "canonical_json",
    "canonical_json_reference",
    "hex_decode",
    "json_decode",
    "json_nesting_exceeds",
    "sha256",
    "sha256_hex",
]

JsonObject: TypeAlias = dict[str, Any]
"""A JSON object whose members a specification leaves open (a JWK, a JOSE header, a JWT
claims set, a DID document, a credential's claims) or that has not been validated yet.

Only for such documents: a service's own result is a named type (a pydantic model or a
dataclass), so that its fields are checked where it is produced and where it is read."""


_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _ascii(text: str | bytes, what: str) -> bytes:
    # Non-ASCII text cannot be base64 of any kind; checked here, because str.encode("ascii")
    # would raise UnicodeEncodeError, which is no ValidationError.
    if isinstance(text, str):
        if not text.isascii():
            raise ValidationError(f"malformed {what} value")
        return text.encode("ascii")
    return text


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
    raw = _ascii(text, "base64url")
    if b"=" in raw or len(raw) % 4 == 1:
        raise ValidationError("malformed base64url value")
    # What base64.b64decode(..., altchars=b"-_", validate=True) does, without its wrapper
    # calls and the translation table it builds each time; the canonical form compared as
    # bytes (b64url_encode's steps, without its str round trip).  A "+" or "/" passes the
    # translation, as it does there, and fails the comparison.
    try:
        decoded = binascii.a2b_base64(
            (raw + b"=" * (-len(raw) % 4)).translate(_FROM_URLSAFE), strict_mode=True
        )
    except (binascii.Error, ValueError) as e:
        raise ValidationError("malformed base64url value") from e
    if binascii.b2a_base64(decoded, newline=False).translate(_URLSAFE).rstrip(b"=") != raw:
        raise ValidationError("non-canonical base64url value")
    return decoded


def b64_encode(data: bytes) -> str:
    """Padded standard base64 (RFC 4648 §4)."""
    return base64.b64encode(data).decode("ascii")


def b64_decode(text: str | bytes) -> bytes:
    """Decode padded standard base64 strictly; raises :class:`ValidationError`."""
    raw = _ascii(text, "base64")
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValidationError("malformed base64 value") from e
    if base64.b64encode(decoded) != raw:
        raise ValidationError("non-canonical base64 value")
    return decoded


_HEX = re.compile(r"(?:[0-9a-f]{2})*").fullmatch


def hex_decode(text: str) -> bytes:
    """Decode lower-case hex (RFC 4648 §8, as :meth:`bytes.hex` writes it) strictly.

    Raises :class:`ValidationError` for anything else: upper case, odd length, spaces
    (which :meth:`bytes.fromhex` would skip, giving one value two spellings), non-ASCII digits.
    """
    if not isinstance(text, str) or not text.isascii() or not _HEX(text):
        raise ValidationError("malformed hex value")
    return bytes.fromhex(text)


# RFC 7493 §2.1 (I-JSON): no unpaired surrogates.  They can only arrive as \u escapes (UTF-8
# cannot carry them), so the decoded strings are walked only when the text has such an escape.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> Any:
    # RFC 8259 §6: NaN and Infinity are not JSON numbers (Python's json reads them).
    raise ValidationError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    # RFC 7493 §2.2: a number beyond IEEE 754 double range (1e400) is not I-JSON; Python's
    # float() would read it as infinity.
    value = float(text)
    if not math.isfinite(value):
        raise ValidationError("a JSON number out of the IEEE 754 double range")
    return value


def _unique_members(pairs: list[tuple[str, Any]]) -> JsonObject:
    # RFC 7493 §2.3: member names are unique (json.loads would keep the last silently).
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValidationError("duplicate member name in JSON object")
    return value


# One decoder for every json_decode: json.loads with options builds a new JSONDecoder (and
# its scanner) on every call, then calls its decode() as this does; the standard library
# shares its own default decoder between threads the same way.
_DECODER = json.JSONDecoder(
    parse_constant=_refuse_constant,
    parse_float=_finite_float,
    object_pairs_hook=_unique_members,
)


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


MAX_JSON_DEPTH = 64
"""How deeply :func:`json_decode` lets arrays and objects nest by default."""

_JSON_SPECIAL = re.compile(r'["\\\[\]{}]')  # what changes JSON nesting or string state


def json_nesting_exceeds(text: str, limit: int) -> bool:
    """Whether the arrays and objects of the JSON ``text`` nest deeper than ``limit``.

    Checked before parsing: :func:`json.loads` recurses on the C stack, and where a library
    has raised the interpreter's recursion limit (``py_ecc`` sets 100,000 on import) a
    deep enough text crashes the process instead of raising ``RecursionError``.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    # Only the structural characters are visited; brackets inside strings do not count.
    depth, in_string, escaped_at = 0, False, -1
    for match in _JSON_SPECIAL.finditer(text):
        char, position = match.group(), match.start()
        if position == escaped_at:
            continue
        if in_string:
            if char == "\\":
                escaped_at = position + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def json_decode(data: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse one I-JSON text (RFC 7493): UTF-8 (RFC 8259 §8.1), unique member names, no
    NaN or Infinity, no unpaired surrogates, nesting no deeper than ``max_depth``.

    Raises :class:`ValidationError` for anything else.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        if not isinstance(text, str):
            raise TypeError("JSON text must be str or bytes")
        if json_nesting_exceeds(text, max_depth):
            raise ValidationError("JSON nested too deeply")
        value = _DECODER.decode(text)
    except (ValueError, RecursionError, TypeError) as e:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors.
        raise ValidationError("malformed JSON") from e
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise ValidationError("JSON string with an unpaired surrogate")
    return value


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
