"""W3C Bitstring Status List v1.0: ``statusSize``-bit entries, most significant bit first,
GZIP-compressed and carried as ``encodedList`` = multibase ``u`` + unpadded base64url; the
``BitstringStatusListEntry`` a credential carries (§2.1) and the
``BitstringStatusListCredential`` that publishes a list (§2.2), a VCDM 2.0 credential — the
specification builds on the Data Model v2.0, so a VCDM 1.1 credential has no place for its
entries — secured here as a ``vc+jwt`` (``vc_jose.py``), and the Validate Algorithm (§3.2).

The IETF Token Status List, the errors and the decoding rules both share (strict container,
bounded decompression) are in ``status_list.py``, whose docstring sets the two side by side.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from credit_commons.core.encoding import JsonObject, b64url_encode
from credit_commons.core.errors import CommonsError, ConfigurationError, IntegrityError
from credit_commons.formats.jws import SignatureVerifier
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
from credit_commons.formats.vc_jose import VCDM2_CONTEXT, datetime_stamp, verify_vc_jose
from credit_commons.formats.vc_jwt import VcJwtExpired

__all__ = [
    "ENTRY_TYPE",
    "LIST_CREDENTIAL_TYPE",
    "LIST_TYPE",
    "BitstringStatusEntry",
    "BitstringStatusList",
    "StatusVerificationError",
    "status_entries",
    "status_list_credential",
    "verify_status_list_credential",
]

ENTRY_TYPE: Final = "BitstringStatusListEntry"
LIST_CREDENTIAL_TYPE: Final = "BitstringStatusListCredential"
LIST_TYPE: Final = "BitstringStatusList"
# W3C §2.1: statusListIndex "MUST be an arbitrary size integer greater than or equal to 0,
# expressed as a string in base 10": ASCII digits, leading zeros included ("007" is 7 in base
# 10; nothing in §2.1 forbids them), no sign, space or fraction.
_DECIMAL = re.compile(r"[0-9]+", re.ASCII)
# Significant digits beyond which no list can hold the index (a list is at most the
# decompression cap; 10**100 entries is far past it), refused before int() (whose own limit,
# 4,300 digits, raises ValueError) so that a long string costs nothing.
_INDEX_DIGITS_MAX = 100


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


# -- the entry in a credential and the status list credential (§2.1, §2.2, §3.2) ------------


class StatusVerificationError(IntegrityError):
    """A status list credential that does not verify for the entry that names it: its
    proof, type, ``id`` or purpose (W3C §3.2 step 4-5, ``STATUS_VERIFICATION_ERROR``)."""

    code = "status_list.verification_failed"
    title = "Status list credential not acceptable"


@dataclass(frozen=True, slots=True)
class BitstringStatusEntry:
    """A ``BitstringStatusListEntry`` (W3C §2.1) that passed :meth:`from_json`: where the
    credential's status is (``statusListCredential``, ``statusListIndex``) and what it
    means (``statusPurpose``).  Only single-bit entries (``statusSize`` 1, the default)
    are supported."""

    list_uri: str
    index: int
    purpose: str

    @classmethod
    def from_json(cls, value: object) -> BitstringStatusEntry:
        """Parse one ``credentialStatus`` entry.

        ``type`` must be ``BitstringStatusListEntry``; ``statusPurpose`` a non-empty
        string; ``statusListIndex`` the decimal *string* of a non-negative integer (§2.1:
        ASCII digits, no sign; leading zeros are allowed, "007" is 7), of at most 100
        significant digits; ``statusListCredential`` a URL; ``id``, when present, a
        URL other than the list's (§2.1: it "MUST NOT be the URL for the status list");
        ``statusSize``, when present, 1.  Raises :class:`StatusListInvalid`.
        """
        if not isinstance(value, Mapping) or value.get("type") != ENTRY_TYPE:
            raise StatusListInvalid(f"a credential status entry must be a {ENTRY_TYPE}")
        purpose, index = value.get("statusPurpose"), value.get("statusListIndex")
        uri = value.get("statusListCredential")
        if not isinstance(purpose, str) or not purpose:
            raise StatusListInvalid("statusPurpose must be a non-empty string")
        if not isinstance(index, str) or not _DECIMAL.fullmatch(index):
            raise StatusListInvalid("statusListIndex must be the base-10 string of an integer")
        digits = index.lstrip("0") or "0"
        if len(digits) > _INDEX_DIGITS_MAX:
            raise StatusListInvalid("statusListIndex is larger than any status list")
        if not isinstance(uri, str) or ":" not in uri:
            raise StatusListInvalid("statusListCredential must be a URL")
        if "id" in value and (not isinstance(value["id"], str) or value["id"] == uri):
            raise StatusListInvalid("the entry's id must be a URL other than the list's")
        if value.get("statusSize", 1) != 1 or isinstance(value.get("statusSize"), bool):
            raise StatusListInvalid("only statusSize 1 is supported")
        return cls(uri, int(digits), purpose)

    def to_json(self) -> dict[str, str]:
        """The entry as issued: its ``id`` is the list URL with the index as fragment."""
        return {
            "id": f"{self.list_uri}#{self.index}",
            "type": ENTRY_TYPE,
            "statusPurpose": self.purpose,
            "statusListIndex": str(self.index),
            "statusListCredential": self.list_uri,
        }


def status_entries(credential: Mapping[str, Any]) -> list[BitstringStatusEntry]:
    """The ``credentialStatus`` of a credential (one entry or a list of them; none when
    absent).  Every entry must be a Bitstring Status List entry: a status this verifier
    cannot check is refused, not skipped.  Raises :class:`StatusListInvalid`."""
    status = credential.get("credentialStatus")
    if status is None:
        return []
    listed = status if isinstance(status, list) else [status]
    if not listed:
        raise StatusListInvalid("credentialStatus must not be an empty list")
    return [BitstringStatusEntry.from_json(entry) for entry in listed]


def status_list_credential(
    *,
    list_uri: str,
    issuer: str,
    purpose: str,
    status_list: BitstringStatusList,
    valid_from: datetime,
    valid_until: datetime,
    ttl_ms: int,
) -> JsonObject:
    """A ``BitstringStatusListCredential`` (W3C §2.2) for the list published at
    ``list_uri``: its ``id`` is that URL, its subject the ``BitstringStatusList`` with the
    purpose, ``encodedList`` and ``ttl`` (milliseconds); secure it with
    ``vc_jose.secure_credential``."""
    return {
        "@context": [VCDM2_CONTEXT],
        "id": list_uri,
        "type": ["VerifiableCredential", LIST_CREDENTIAL_TYPE],
        "issuer": issuer,
        "validFrom": datetime_stamp(valid_from),
        "validUntil": datetime_stamp(valid_until),
        "credentialSubject": {
            "id": f"{list_uri}#list",
            "type": LIST_TYPE,
            "statusPurpose": purpose,
            "encodedList": status_list.encode(),
            "ttl": ttl_ms,
        },
    }


def verify_status_list_credential(
    token: str,
    key: SignatureVerifier,
    entry: BitstringStatusEntry,
    *,
    algs: Collection[str],
    now: int,
    min_entries: int = BITSTRING_MIN_ENTRIES,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> int:
    """The status of ``entry`` in the status list credential ``token`` (a ``vc+jwt``),
    following W3C §3.2 (Validate Algorithm); returns the entry's bit (1: the purpose
    applies, for ``revocation`` the credential is revoked).

    4. the credential verifies under ``key`` (``vc_jose.verify_vc_jose``: signature,
       VCDM 2.0 shape, validity period), is a ``BitstringStatusListCredential`` whose
       ``id`` is the entry's ``statusListCredential`` (a list answers only for its own
       URL) and whose subject is a ``BitstringStatusList``;
    5. the entry's ``statusPurpose`` is one of the list's;
    6-9. ``encodedList`` expands (§3.4) to at least ``min_entries`` entries;
    10. the index lies inside the list.

    Raises :class:`StatusVerificationError` (steps 4-5; the credential's own error is its
    cause), ``VcJwtExpired`` for a list outside its validity period, :class:`StatusListInvalid`
    or :class:`StatusListTooShort` (steps 6-9) and :class:`StatusIndexOutOfRange` (step 10).
    """
    try:
        secured = verify_vc_jose(token, key, algs=algs, now=now)
    except VcJwtExpired:
        raise
    except CommonsError as e:
        raise StatusVerificationError("the status list credential does not verify") from e
    subject = secured.subject
    if LIST_CREDENTIAL_TYPE not in secured.types or subject.get("type") != LIST_TYPE:
        raise StatusVerificationError(f"not a {LIST_CREDENTIAL_TYPE}")
    if secured.credential.get("id") != entry.list_uri:
        raise StatusVerificationError("the status list credential is for another URL")
    purposes = subject.get("statusPurpose")
    listed = purposes if isinstance(purposes, list) else [purposes]
    if entry.purpose not in listed:
        raise StatusVerificationError("the status list is for another purpose")
    encoded = subject.get("encodedList")
    if not isinstance(encoded, str):
        raise StatusListInvalid("encodedList must be a string")
    bitstring = BitstringStatusList.decode(
        encoded,
        min_entries=min_entries,
        max_decompressed_bytes=max_decompressed_bytes,
    )
    return bitstring.get(entry.index)
