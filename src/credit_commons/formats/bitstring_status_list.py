"""W3C Bitstring Status List v1.0: ``statusSize``-bit entries, most significant bit first,
GZIP-compressed and carried as ``encodedList`` = multibase ``u`` + unpadded base64url.

The IETF Token Status List, the errors and the decoding rules both share (strict container,
bounded decompression) are in ``status_list.py``, whose docstring sets the two side by side.
"""

from __future__ import annotations

import gzip

from credit_commons.core.encoding import b64url_encode
from credit_commons.core.errors import ConfigurationError
from credit_commons.formats.status_list import (
    _MULTIBASE_BASE64URL,
    _WBITS_GZIP,
    BITSTRING_MIN_ENTRIES,
    BITSTRING_STATUS_SIZE_MAX,
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    StatusListInvalid,
    StatusListTooShort,
    _b64url,
    _check_index,
    _check_limit,
    _check_value,
    _inflate,
)

__all__ = ["BitstringStatusList"]


# -- W3C Bitstring Status List v1.0 ----------------------------------------------------------


def _check_status_size(status_size: object) -> int:
    if (
        isinstance(status_size, bool)
        or not isinstance(status_size, int)
        or not 1 <= status_size <= BITSTRING_STATUS_SIZE_MAX
    ):
        raise StatusListInvalid(
            f"statusSize must be an integer from 1 to {BITSTRING_STATUS_SIZE_MAX}"
        )
    return status_size


def _check_min_entries(min_entries: int) -> None:
    if isinstance(min_entries, bool) or not isinstance(min_entries, int) or min_entries < 1:
        raise ConfigurationError("min_entries must be a positive integer")


def _msb_span(offset: int, width: int) -> tuple[int, int, int]:
    """First byte, byte count and right shift of a ``width``-bit field at bit ``offset``."""
    first = offset >> 3
    last = (offset + width - 1) >> 3
    count = last - first + 1
    return first, count, count * 8 - (offset & 7) - width


class BitstringStatusList:
    """A W3C Bitstring Status List: ``status_size``-bit entries, most significant bit first.

    Entry ``i`` occupies bits ``i * statusSize`` to ``(i + 1) * statusSize - 1`` of the
    bitstring, where bit 0 is the left-most (most significant) bit of byte 0 (W3C §2.2
    ``encodedList``; §3.3 step 2).  An entry wider than one bit is read as an unsigned
    integer whose first bit is the most significant, continuing the bitstring's order.

    Construct one with :meth:`new` or decode ``encodedList`` with :meth:`decode`.  The list is
    mutable through :meth:`set`, which keeps it valid.
    """

    __slots__ = ("_data", "_status_size")

    def __init__(
        self,
        bitstring: bytes | bytearray,
        *,
        status_size: int = 1,
        min_entries: int = BITSTRING_MIN_ENTRIES,
    ) -> None:
        """Wrap ``bitstring`` (copied) as a list of ``status_size``-bit entries.

        Raises :class:`StatusListInvalid` for a bad ``status_size`` or non-bytes input and
        :class:`StatusListTooShort` if the list holds fewer than ``min_entries`` entries
        (W3C §3.2 step 9, ``STATUS_LIST_LENGTH_ERROR``).
        """
        self._status_size = _check_status_size(status_size)
        _check_min_entries(min_entries)
        if not isinstance(bitstring, bytes | bytearray):
            raise StatusListInvalid("bitstring must be bytes")
        self._data = bytearray(bitstring)
        if self.size < min_entries:
            raise StatusListTooShort(
                f"bitstring status list holds {self.size} entries; at least "
                f"{min_entries} are required",
                extra={"size": self.size, "min_entries": min_entries},
            )

    @classmethod
    def new(
        cls,
        size: int = BITSTRING_MIN_ENTRIES,
        *,
        status_size: int = 1,
        min_entries: int = BITSTRING_MIN_ENTRIES,
    ) -> BitstringStatusList:
        """An all-zero list with room for at least ``size`` entries (W3C §3.3 step 1).

        The bitstring is rounded up to a whole byte.  Raises :class:`StatusListInvalid` for a
        bad ``status_size`` or ``size`` and :class:`StatusListTooShort` below ``min_entries``.
        """
        _check_status_size(status_size)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise StatusListInvalid("status list size must be a positive integer")
        return cls(
            bytes(-(-size * status_size // 8)), status_size=status_size, min_entries=min_entries
        )

    @property
    def status_size(self) -> int:
        """Bits per entry (``statusSize``)."""
        return self._status_size

    @property
    def size(self) -> int:
        """Number of whole entries in the bitstring."""
        return len(self._data) * 8 // self._status_size

    def __len__(self) -> int:
        return self.size

    def get(self, index: int) -> int:
        """The entry at ``index`` (``statusListIndex``).

        Raises :class:`StatusIndexOutOfRange` (W3C §3.2 step 10, ``RANGE_ERROR``).
        """
        _check_index(index, self.size)
        first, count, shift = _msb_span(index * self._status_size, self._status_size)
        chunk = int.from_bytes(self._data[first : first + count], "big")
        return (chunk >> shift) & ((1 << self._status_size) - 1)

    def set(self, index: int, value: int) -> None:
        """Set the entry at ``index`` to ``value`` (W3C §3.3 step 2).

        Raises :class:`StatusIndexOutOfRange` for a bad index and :class:`StatusValueInvalid`
        if ``value`` does not fit in ``status_size`` bits.
        """
        _check_index(index, self.size)
        _check_value(value, self._status_size)
        first, count, shift = _msb_span(index * self._status_size, self._status_size)
        chunk = int.from_bytes(self._data[first : first + count], "big")
        mask = ((1 << self._status_size) - 1) << shift
        chunk = (chunk & ~mask) | (value << shift)
        self._data[first : first + count] = chunk.to_bytes(count, "big")

    def to_bytes(self) -> bytes:
        """The uncompressed bitstring."""
        return bytes(self._data)

    def encode(self) -> str:
        """``encodedList``: multibase ``u`` + base64url(GZIP(bitstring)) (W3C §3.3 step 3).

        The gzip header carries no timestamp, so the output is deterministic.
        """
        compressed = gzip.compress(bytes(self._data), compresslevel=9, mtime=0)
        return _MULTIBASE_BASE64URL + b64url_encode(compressed)

    @classmethod
    def decode(
        cls,
        encoded_list: str,
        *,
        status_size: int = 1,
        min_entries: int = BITSTRING_MIN_ENTRIES,
        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    ) -> BitstringStatusList:
        """Expand ``encodedList`` (W3C §3.4, Bitstring Expansion Algorithm).

        1. The value must start with the multibase prefix ``u`` (base64url, no padding).
        2. The rest must be strict unpadded base64url.
        3. The bytes must be exactly one complete GZIP member (zlib is refused), expanding to
           at most ``max_decompressed_bytes``.
        4. The bitstring must hold at least ``min_entries`` entries (§3.2 step 9).

        Raises :class:`StatusListInvalid` (steps 1-3), :class:`StatusListTooLarge` (step 3)
        or :class:`StatusListTooShort` (step 4).
        """
        width = _check_status_size(status_size)
        _check_limit(max_decompressed_bytes)
        if not isinstance(encoded_list, str) or not encoded_list.startswith(_MULTIBASE_BASE64URL):
            raise StatusListInvalid("encodedList must be multibase base64url (prefix 'u')")
        compressed = _b64url(encoded_list[1:], "encodedList")
        bitstring = _inflate(
            compressed, wbits=_WBITS_GZIP, limit=max_decompressed_bytes, container="GZIP"
        )
        return cls(bitstring, status_size=width, min_entries=min_entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BitstringStatusList):
            return NotImplemented
        return (self._status_size, self._data) == (other._status_size, other._data)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"BitstringStatusList(status_size={self._status_size}, size={self.size})"
