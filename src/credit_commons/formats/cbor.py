"""CBOR (RFC 8949) through the ``cbor2`` library, read strictly.

The platform reads CBOR from outsiders (IETF Token Status Lists in CBOR, COSE_Sign1 status
list tokens), so one value must have one encoding.  :func:`loads_strict` decodes with
``cbor2`` and then requires that encoding the value again gives back exactly the input:
``cbor2`` writes definite lengths and every argument in its shortest form (RFC 8949 §4.2.1,
"preferred serialization"), keeps the order of a map's keys and has nothing to write for a
duplicate key or for bytes after the item.  So an indefinite length, a longer-than-needed
argument, a duplicate map key (RFC 8949 §5.6: such a map is not valid) and trailing bytes
are all refused, without a CBOR parser of our own.  Floating-point values are refused too
(``cbor2`` writes a float in 64 bits where the input may have used 16 or 32): none of the
structures read here has one.
"""

from __future__ import annotations

from typing import Any

import cbor2

from credit_commons.core.errors import ValidationError

__all__ = ["CborInvalid", "dumps", "loads_strict"]


class CborInvalid(ValidationError):
    """Bytes that are not exactly one CBOR item in preferred serialisation."""

    code = "cbor.invalid"
    title = "Invalid CBOR"


def dumps(value: Any) -> bytes:
    """``value`` as CBOR in preferred serialisation, map keys in their insertion order."""
    return cbor2.dumps(value)


def loads_strict(data: bytes, what: str = "CBOR") -> Any:
    """The one CBOR item ``data`` encodes, refusing every other spelling of it (see the
    module).  Tags the library does not interpret stay ``cbor2.CBORTag``.

    Raises :class:`CborInvalid`.
    """
    if not isinstance(data, bytes | bytearray):
        raise CborInvalid(f"{what} must be bytes")
    try:
        value = cbor2.loads(bytes(data))
        again = cbor2.dumps(value)
    except (cbor2.CBORError, RecursionError, ValueError, TypeError, OverflowError) as e:
        raise CborInvalid(f"{what} is not valid CBOR") from e
    if again != data:
        raise CborInvalid(
            f"{what} is not one CBOR item in preferred serialisation (non-shortest or "
            "indefinite lengths, duplicate map keys, floats, or bytes after the item)"
        )
    return value
