"""Status list encodings: IETF Token Status List here, W3C Bitstring Status List v1.0 beside it.

Two specifications pack per-credential statuses into a compressed bit array, and they differ in
exactly the two places where implementations tend to mix them up:

* **IETF Token Status List** (draft-ietf-oauth-status-list, "TSL"): entries of 1, 2, 4 or 8
  bits, counted from the *least* significant bit of each byte (§4.1), compressed with DEFLATE
  in the **ZLIB** format (RFC 1950), and carried as ``{"bits": n, "lst": base64url(...)}``
  in JSON (§4.2) or as a CBOR map with a byte string ``lst`` (§4.3).
* **W3C Bitstring Status List v1.0**: index 0 is the left-most, i.e. *most* significant, bit
  of byte 0 (§2.2 ``encodedList``), compressed with **GZIP** (RFC 1952), and carried as
  ``encodedList`` = multibase ``u`` + unpadded base64url.  Entries are ``statusSize`` bits
  wide (default 1) and a list holds at least 131,072 entries (§3.2 step 2).

Decoding is strict and bounded: the container format must be the one the specification names
(zlib is not accepted where gzip is expected, or the other way round), the stream must be
complete with nothing after it, and decompression stops at a configurable limit so a small
input cannot expand into gigabytes.

The W3C list is in ``bitstring_status_list.py``; random index allocation (the issuer's) is
in ``issuer/status_index.py``.  The errors map to the processing errors of the two
specifications where they have one: ``StatusListTooShort`` is W3C Bitstring Status List §3.5
``STATUS_LIST_LENGTH_ERROR`` and ``StatusIndexOutOfRange`` is the ``RANGE_ERROR`` of §3.2
step 10; everything else that is malformed is the ``MALFORMED_VALUE_ERROR`` of its Algorithms
section.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from enum import IntEnum
from typing import Final

from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.core.errors import ConfigurationError, ValidationError
from credit_commons.formats import cbor

__all__ = [
    "BITSTRING_MIN_ENTRIES",
    "BITSTRING_STATUS_SIZE_MAX",
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "TOKEN_STATUS_LIST_BITS",
    "StatusIndexOutOfRange",
    "StatusList",
    "StatusListError",
    "StatusListInvalid",
    "StatusListTooLarge",
    "StatusListTooShort",
    "StatusValueInvalid",
    "TokenStatus",
    "entry_byte",
    "entry_in_byte",
]

#: Allowed ``bits`` of a Token Status List (TSL §4.1 step 1).
TOKEN_STATUS_LIST_BITS: Final = frozenset({1, 2, 4, 8})

#: Minimum number of entries of a Bitstring Status List (W3C §3.2 step 2; 16 KiB of 1-bit
#: entries, the herd-privacy floor of the specification's Privacy Considerations).
BITSTRING_MIN_ENTRIES: Final = 131_072

#: Largest ``statusSize`` this implementation accepts.  The specification allows any positive
#: integer, but a ``statusMessage`` array must then list 2**statusSize messages; conforming
#: processors may support a subset of sizes (W3C §1.3 Conformance).
BITSTRING_STATUS_SIZE_MAX: Final = 32

#: Default ceiling on the decompressed size of either kind of list: 16 MiB, which holds
#: 2**24 8-bit or 2**27 1-bit statuses.  Callers with larger lists pass their own limit.
DEFAULT_MAX_DECOMPRESSED_BYTES: Final = 16 * 1024 * 1024

# zlib window-bits selecting the container: 15 = ZLIB (RFC 1950) only, 31 = GZIP (RFC 1952)
# only.  Automatic detection (wbits 47) is deliberately not used.
_WBITS_ZLIB: Final = zlib.MAX_WBITS
_WBITS_GZIP: Final = 16 + zlib.MAX_WBITS

_MULTIBASE_BASE64URL: Final = "u"  # multibase prefix for unpadded base64url

_JSON_MEMBERS: Final = frozenset({"bits", "lst", "aggregation_uri"})


class StatusListError(ValidationError):
    """Root of the status-list errors that concern a malformed list or a bad argument."""

    code = "status_list.error"
    title = "Status list error"


class StatusListInvalid(StatusListError):
    """An encoded status list is malformed: wrong shape, width, encoding or compression."""

    code = "status_list.invalid"
    title = "Invalid status list"


class StatusListTooLarge(StatusListInvalid):
    """A compressed status list expands beyond the configured limit (a decompression bomb)."""

    code = "status_list.too_large"
    title = "Status list too large"


class StatusListTooShort(StatusListInvalid):
    """A bitstring status list holds fewer entries than the herd-privacy minimum."""

    code = "status_list.too_short"
    title = "Status list too short"


class StatusIndexOutOfRange(StatusListError):
    """A status index lies outside the list."""

    code = "status_list.index_out_of_range"
    title = "Status index out of range"


class StatusValueInvalid(StatusListError):
    """A status value does not fit the list's bits per entry."""

    code = "status_list.value_invalid"
    title = "Invalid status value"


class TokenStatus(IntEnum):
    """Status Type values registered by TSL §7.1.

    0x03 and a small range below 0x10 are reserved for application-specific use (the exact
    range has moved between draft revisions); any value that fits the list's ``bits`` may be
    stored, these are only the named ones.
    """

    VALID = 0x00
    INVALID = 0x01
    SUSPENDED = 0x02
    APPLICATION_SPECIFIC = 0x03


# -- helpers shared by both encodings -------------------------------------------------------


def _check_index(index: int, size: int) -> None:
    if isinstance(index, bool) or not isinstance(index, int):
        raise StatusIndexOutOfRange("status index must be an integer")
    if not 0 <= index < size:
        raise StatusIndexOutOfRange(
            f"status index {index} is outside the list (size {size})",
            extra={"index": index, "size": size},
        )


def _check_value(value: int, width: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StatusValueInvalid("status value must be an integer")
    if not 0 <= value < (1 << width):
        raise StatusValueInvalid(
            f"status value {value} does not fit in {width} bit(s)",
            extra={"bits": width},
        )


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError("max_decompressed_bytes must be a positive integer")


def _inflate(data: bytes, *, wbits: int, limit: int, container: str) -> bytes:
    """Decompress exactly one complete ``container`` stream of at most ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits)
    try:
        # Asking for one byte more than the limit tells "exactly at the limit" apart from
        # "over it" without ever holding more than limit + 1 bytes.
        out = inflater.decompress(data, limit + 1)
    except zlib.error as e:
        raise StatusListInvalid(f"status list is not valid {container} data") from e
    if len(out) > limit:
        raise StatusListTooLarge(
            f"status list expands beyond {limit} bytes",
            hint="raise max_decompressed_bytes if lists this large are expected",
            extra={"limit": limit},
        )
    if not inflater.eof:
        raise StatusListInvalid(f"status list {container} stream is truncated")
    if inflater.unused_data:
        raise StatusListInvalid(f"status list has data after the {container} stream")
    if not out:
        raise StatusListInvalid("status list is empty")
    return out


def _b64url(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise StatusListInvalid(f"{what} must be a string")
    try:
        return b64url_decode(text)
    except (ValidationError, UnicodeEncodeError) as e:
        raise StatusListInvalid(f"{what} is not unpadded base64url") from e


# -- IETF Token Status List ------------------------------------------------------------------


def entry_byte(index: int, bits: int) -> int:
    """The offset of the byte that holds entry ``index`` of a Token Status List of ``bits``-bit
    entries (TSL §4.1: 8 / ``bits`` entries per byte), so that one entry can be read without
    the rest of the list."""
    return index * bits >> 3


def entry_in_byte(byte: int, index: int, bits: int) -> int:
    """Entry ``index`` of a Token Status List of ``bits``-bit entries, read from the byte
    :func:`entry_byte` names (TSL §4.1 step 2: counted from the least significant bit)."""
    return (byte >> (index * bits & 7)) & ((1 << bits) - 1)


def _check_bits(bits: object) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in TOKEN_STATUS_LIST_BITS:
        raise StatusListInvalid("bits must be 1, 2, 4 or 8")
    return bits


class StatusList:
    """An IETF Token Status List: a byte array of ``bits``-wide statuses, LSB first.

    Construct one with :meth:`new` (all VALID), from its raw bytes, or by decoding with
    :meth:`from_json`, :meth:`from_cbor` or :meth:`from_compressed`.  The list is mutable
    through :meth:`set`, which keeps it valid; equality compares ``bits`` and the bytes.

    The size of a Token Status List is implied by its byte length: ``len(bytes) * 8 / bits``
    entries (TSL §4.1 step 2).
    """

    __slots__ = ("_bits", "_data", "aggregation_uri")

    def __init__(
        self, bits: int, data: bytes | bytearray, *, aggregation_uri: str | None = None
    ) -> None:
        """Wrap ``data`` (copied) as a list of ``bits``-wide statuses.

        Raises :class:`StatusListInvalid` if ``bits`` is not 1, 2, 4 or 8, ``data`` is empty
        or ``aggregation_uri`` is not a string.
        """
        self._bits = _check_bits(bits)
        if not isinstance(data, bytes | bytearray) or not data:
            raise StatusListInvalid("status list bytes must be non-empty")
        if aggregation_uri is not None and not isinstance(aggregation_uri, str):
            raise StatusListInvalid("aggregation_uri must be a string")
        self._data = bytearray(data)
        self.aggregation_uri = aggregation_uri

    @classmethod
    def new(cls, size: int, bits: int = 1) -> StatusList:
        """An all-VALID list with room for at least ``size`` statuses.

        The capacity is rounded up to a whole byte.  Raises :class:`StatusListInvalid` for a
        bad ``bits`` or a ``size`` below 1.
        """
        _check_bits(bits)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise StatusListInvalid("status list size must be a positive integer")
        return cls(bits, bytes(-(-size * bits // 8)))

    @property
    def bits(self) -> int:
        """Bits per status: 1, 2, 4 or 8."""
        return self._bits

    @property
    def size(self) -> int:
        """Number of statuses the list holds."""
        return len(self._data) * 8 // self._bits

    def __len__(self) -> int:
        return self.size

    def get(self, index: int) -> int:
        """The status at ``index``.

        Raises :class:`StatusIndexOutOfRange` if ``index`` is outside the list.
        """
        _check_index(index, self.size)
        return entry_in_byte(self._data[entry_byte(index, self._bits)], index, self._bits)

    def set(self, index: int, value: int) -> None:
        """Set the status at ``index`` to ``value``.

        Raises :class:`StatusIndexOutOfRange` for a bad index and :class:`StatusValueInvalid`
        if ``value`` does not fit in ``bits``.
        """
        _check_index(index, self.size)
        _check_value(value, self._bits)
        offset = index * self._bits
        shift = offset & 7
        mask = ((1 << self._bits) - 1) << shift
        byte = offset >> 3
        self._data[byte] = (self._data[byte] & ~mask) | (value << shift)

    def to_bytes(self) -> bytes:
        """The uncompressed byte array (TSL §4.1 step 2)."""
        return bytes(self._data)

    def compress(self) -> bytes:
        """The byte array as DEFLATE in the ZLIB format at the highest level (TSL §4.1 step 3)."""
        return zlib.compress(self._data, 9)

    @classmethod
    def from_compressed(
        cls,
        bits: int,
        compressed: bytes,
        *,
        aggregation_uri: str | None = None,
        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    ) -> StatusList:
        """Decode a ZLIB-compressed byte array (TSL §4.1 step 3).

        Raises :class:`StatusListInvalid` for a bad ``bits``, data that is not one complete
        ZLIB stream (gzip and raw DEFLATE are refused), trailing bytes or an empty list, and
        :class:`StatusListTooLarge` beyond ``max_decompressed_bytes``.
        """
        _check_bits(bits)
        _check_limit(max_decompressed_bytes)
        if not isinstance(compressed, bytes | bytearray):
            raise StatusListInvalid("compressed status list must be bytes")
        data = _inflate(
            bytes(compressed), wbits=_WBITS_ZLIB, limit=max_decompressed_bytes, container="ZLIB"
        )
        return cls(bits, data, aggregation_uri=aggregation_uri)

    # TSL §4.2: JSON form.

    def to_json(self) -> dict[str, object]:
        """The JSON ``status_list`` object: ``{"bits": n, "lst": base64url(zlib(bytes))}``."""
        out: dict[str, object] = {"bits": self._bits, "lst": b64url_encode(self.compress())}
        if self.aggregation_uri is not None:
            out["aggregation_uri"] = self.aggregation_uri
        return out

    @classmethod
    def from_json(
        cls,
        value: object,
        *,
        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    ) -> StatusList:
        """Decode a parsed JSON ``status_list`` object (TSL §4.2).

        ``bits`` must be the JSON integer 1, 2, 4 or 8 and ``lst`` unpadded base64url; the
        only other member accepted is the optional string ``aggregation_uri``.  Raises
        :class:`StatusListInvalid` for any deviation and :class:`StatusListTooLarge` for a
        list that expands beyond ``max_decompressed_bytes``.
        """
        if not isinstance(value, Mapping):
            raise StatusListInvalid("status_list must be a JSON object")
        unknown = set(value) - _JSON_MEMBERS
        if unknown or "bits" not in value or "lst" not in value:
            raise StatusListInvalid(
                "status_list must have exactly bits, lst and optionally aggregation_uri"
            )
        bits = _check_bits(value["bits"])
        compressed = _b64url(value["lst"], "lst")
        uri = value.get("aggregation_uri")
        if uri is not None and not isinstance(uri, str):
            raise StatusListInvalid("aggregation_uri must be a string")
        return cls.from_compressed(
            bits, compressed, aggregation_uri=uri, max_decompressed_bytes=max_decompressed_bytes
        )

    # TSL §4.3: CBOR form.

    def to_cbor(self) -> bytes:
        """The CBOR ``StatusList`` map: ``{"bits": uint, "lst": bstr}`` (TSL §4.3).

        Keys are written in the order of the draft's examples (``bits``, ``lst``,
        ``aggregation_uri``) so the examples reproduce byte for byte.
        """
        return cbor.dumps(self.to_cbor_value())

    def to_cbor_value(self) -> dict[str, int | bytes | str]:
        """The ``StatusList`` map as a value to embed in a CBOR structure (a CWT's
        ``status_list`` claim, TSL §5.2)."""
        out: dict[str, int | bytes | str] = {"bits": self._bits, "lst": self.compress()}
        if self.aggregation_uri is not None:
            out["aggregation_uri"] = self.aggregation_uri
        return out

    @classmethod
    def from_cbor(
        cls,
        data: bytes,
        *,
        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    ) -> StatusList:
        """Decode a CBOR ``StatusList`` map (TSL §4.3).

        The bytes must be one CBOR item in preferred (shortest, definite-length)
        serialisation without duplicate keys or trailing bytes (``formats/cbor.py``), and
        the item what :meth:`from_cbor_value` accepts.  Raises :class:`StatusListInvalid`
        otherwise and :class:`StatusListTooLarge` for a list beyond
        ``max_decompressed_bytes``.
        """
        try:
            value = cbor.loads_strict(data, "the CBOR status list")
        except cbor.CborInvalid as e:
            raise StatusListInvalid(e.detail) from e
        return cls.from_cbor_value(value, max_decompressed_bytes=max_decompressed_bytes)

    @classmethod
    def from_cbor_value(
        cls,
        value: object,
        *,
        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    ) -> StatusList:
        """A decoded CBOR ``StatusList`` map (TSL §4.3): text keys ``bits`` (an unsigned
        integer), ``lst`` (a byte string) and optionally ``aggregation_uri`` (a text
        string), nothing else.  Raises :class:`StatusListInvalid` otherwise and
        :class:`StatusListTooLarge` for a list beyond ``max_decompressed_bytes``.
        """
        if not isinstance(value, dict) or not set(value) <= _JSON_MEMBERS:
            raise StatusListInvalid(
                "CBOR status list must be a map of bits, lst and aggregation_uri"
            )
        bits, compressed = value.get("bits"), value.get("lst")
        uri = value.get("aggregation_uri")
        if isinstance(bits, bool) or not isinstance(bits, int) or not isinstance(compressed, bytes):
            raise StatusListInvalid("CBOR status list needs uint bits and bstr lst")
        if uri is not None and not isinstance(uri, str):
            raise StatusListInvalid("aggregation_uri must be a text string")
        return cls.from_compressed(
            bits, compressed, aggregation_uri=uri, max_decompressed_bytes=max_decompressed_bytes
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatusList):
            return NotImplemented
        return (self._bits, self._data, self.aggregation_uri) == (
            other._bits,
            other._data,
            other.aggregation_uri,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"StatusList(bits={self._bits}, size={self.size})"
