"""Elements of the BLS12-381 scalar field and their JSON encoding.

A field element travels in JSON (claims, proofs' public inputs) as its **canonical decimal
string**: digits only, no sign, no leading zero (``"0"`` for zero), value below the modulus
``r``.  That is the encoding snarkjs uses for public signals, so a claim and a proof's public
input compare as strings.  Anything else is refused rather than normalised.
"""

from __future__ import annotations

import re

from credit_commons.zk.errors import FieldElementInvalid

__all__ = ["FIELD_MODULUS", "decode_element", "encode_element", "require_element"]

FIELD_MODULUS = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
"""``r``, the order of BLS12-381's prime-order subgroups: the circuits' and Groth16's field."""

_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,77})")


def require_element(value: object, name: str = "value") -> int:
    """Return ``value`` when it is an ``int`` (not a ``bool``) with ``0 <= value < r``.

    Raises :class:`FieldElementInvalid` otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldElementInvalid(f"{name} is not an integer")
    if not 0 <= value < FIELD_MODULUS:
        raise FieldElementInvalid(f"{name} is not below the field modulus")
    return value


def encode_element(value: int) -> str:
    """The canonical decimal string of a field element; raises :class:`FieldElementInvalid`."""
    return str(require_element(value))


def decode_element(text: object, name: str = "value") -> int:
    """Parse a canonical decimal string into a field element.

    Raises :class:`FieldElementInvalid` for a non-string, a non-canonical spelling (sign,
    leading zero, spaces, hex) or a value not below the modulus.
    """
    if not isinstance(text, str) or _DECIMAL.fullmatch(text) is None:
        raise FieldElementInvalid(f"{name} is not a canonical decimal field element")
    return require_element(int(text), name)
