"""CBOR (RFC 8949) through the ``cbor2`` library, read at two levels of strictness.

The platform reads CBOR from outsiders (IETF Token Status Lists in CBOR, COSE_Sign1 status
list tokens).  Two readers, for two different needs:

* :func:`loads_unique` accepts any valid CBOR item: the one item and nothing after it, and no
  map anywhere in it with the same key twice.  RFC 8949 §5.6: such a map is not valid, and
  its meaning depends on the decoder; RFC 9052 §9: "Applications MUST NOT parse and process
  messages with the same label used twice as a key in a single map."  Floats, tags,
  indefinite lengths and longer-than-needed arguments are all valid CBOR and accepted: a
  COSE signature covers the bytes as they were received, so how another implementation chose
  to encode its protected header or its claims is not ours to judge (RFC 9052 §9 restricts
  the encoding of the ``Sig_structure``, which the verifier builds itself, not of the
  message).  ``cbor2`` silently keeps the last of two equal keys and has no option to refuse
  them, so :func:`_item_end` walks the item's heads (RFC 8949 §3, the well-formedness walk
  of its Appendix C) to find each map's keys; decoding stays ``cbor2``'s.
* :func:`loads_strict` accepts one encoding per value: :func:`loads_unique`, and then
  encoding the value again must give back exactly the input.  ``cbor2`` writes definite
  lengths and every argument in its shortest form (RFC 8949 §4.2.1, "preferred
  serialization"), keeps the order of a map's keys and has nothing to write for a duplicate
  key or for bytes after the item.  So an indefinite length, a longer-than-needed argument
  and a float in 16 or 32 bits (``cbor2`` writes every float in 64) are refused as well.
  Used where the platform defines the structure and nothing in it needs another spelling:
  the outer COSE_Sign1 array and a stand-alone CBOR ``StatusList``.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any, Final

import cbor2

from credit_commons.core.errors import ValidationError

__all__ = ["CborInvalid", "dumps", "loads_strict", "loads_unique"]

#: Nesting of arrays, maps and tags from which an item is refused (``cbor2``'s own limit
#: is 400); the walk stops at the same depth.
MAX_DEPTH: Final = 64

_ERRORS: Final = (cbor2.CBORError, RecursionError, ValueError, TypeError, OverflowError)


class CborInvalid(ValidationError):
    """Bytes that are not exactly one valid CBOR item (or, for :func:`loads_strict`, not
    in preferred serialisation)."""

    code = "cbor.invalid"
    title = "Invalid CBOR"


def dumps(value: Any) -> bytes:
    """``value`` as CBOR in preferred serialisation, map keys in their insertion order."""
    return cbor2.dumps(value)


def loads_unique(data: bytes, what: str = "CBOR") -> Any:
    """The one valid CBOR item ``data`` encodes, in whatever serialisation: refused when
    it is not well-formed, is followed by more bytes, nests deeper than :data:`MAX_DEPTH`
    or has a map with the same key twice (see the module).  Tags the library does not
    interpret stay ``cbor2.CBORTag``.

    Raises :class:`CborInvalid`.
    """
    if not isinstance(data, bytes | bytearray):
        raise CborInvalid(f"{what} must be bytes")
    data = bytes(data)
    try:
        value = cbor2.CBORDecoder(BytesIO(data), max_depth=MAX_DEPTH).decode()
        # cbor2 has read a well-formed item; the walk finds where it ends and its maps' keys.
        end = _item_end(memoryview(data), 0, 0, what)
    except CborInvalid:
        raise
    except (*_ERRORS, IndexError) as e:
        raise CborInvalid(f"{what} is not valid CBOR") from e
    if end != len(data):
        raise CborInvalid(f"{what} has bytes after the CBOR item")
    return value


def loads_strict(data: bytes, what: str = "CBOR") -> Any:
    """The one CBOR item ``data`` encodes, refusing every other spelling of it (see the
    module).  Tags the library does not interpret stay ``cbor2.CBORTag``.

    Raises :class:`CborInvalid`.
    """
    value = loads_unique(data, what)
    try:
        again = cbor2.dumps(value)
    except _ERRORS as e:
        raise CborInvalid(f"{what} is not valid CBOR") from e
    if again != data:
        raise CborInvalid(
            f"{what} is not one CBOR item in preferred serialisation (non-shortest or "
            "indefinite lengths, or floats)"
        )
    return value


# -- the walk (RFC 8949 §3, Appendix C) --------------------------------------------------------

_BREAK: Final = 0xFF
_INDEFINITE: Final = 31


def _head(data: memoryview, pos: int) -> tuple[int, int, int | None, int]:
    # The head at pos: major type, additional information, argument (None for an
    # indefinite length) and the offset after the head (RFC 8949 §3).
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        return major, info, info, pos
    if info < 28:
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise IndexError("truncated head")
        return major, info, int.from_bytes(data[pos : pos + size], "big"), pos + size
    if info == _INDEFINITE and major in (2, 3, 4, 5):
        return major, info, None, pos
    raise ValueError("reserved or misplaced additional information")


def _item_end(data: memoryview, pos: int, depth: int, what: str) -> int:
    # Where the item starting at pos ends; refuses a map with a repeated key on the way.
    if depth > MAX_DEPTH:
        raise ValueError("CBOR nested too deeply")
    major, _info, argument, pos = _head(data, pos)
    if major in (0, 1, 7):  # integers, floats and simple values: the head is the item
        return pos
    if major in (2, 3):  # strings: the bytes, or definite-length chunks until the break
        if argument is not None:
            if pos + argument > len(data):
                raise IndexError("truncated string")
            return pos + argument
        while data[pos] != _BREAK:
            pos = _item_end(data, pos, depth + 1, what)
        return pos + 1
    if major == 6:  # a tag: its content
        return _item_end(data, pos, depth + 1, what)
    if major == 4:  # an array: its items
        count = 0
        while data[pos] != _BREAK if argument is None else count < argument:
            pos = _item_end(data, pos, depth + 1, what)
            count += 1
        return pos + 1 if argument is None else pos
    # A map: its pairs, each key compared, as a value, with the keys before it.
    encodings: set[bytes] = set()
    values: set[Any] = set()
    count = 0
    while data[pos] != _BREAK if argument is None else count < argument:
        start = pos
        pos = _item_end(data, pos, depth + 1, what)
        # The key as cbor2 decodes a map key (hashable: a map key that is a map or an
        # array is read immutable), from a map of that one key (and null).
        key = next(iter(cbor2.loads(b"\xa1" + bytes(data[start:pos]) + b"\xf6")))
        # Equal keys are equal values (RFC 8949 §5.6): the key in preferred serialisation
        # makes 1 and a longer spelling of 1 one key.  Keys CBOR tells apart but a decoder
        # may not (1, 1.0 and true are one Python dict key) are refused too: the decoded map
        # would silently keep one of them.
        encoding = cbor2.dumps(key, canonical=True)
        if encoding in encodings or key in values:
            raise CborInvalid(f"{what} has a map with a repeated key (RFC 8949 §5.6)")
        encodings.add(encoding)
        values.add(key)
        pos = _item_end(data, pos, depth + 1, what)
        count += 1
    return pos + 1 if argument is None else pos
