"""formats/cbor.py: any valid CBOR without repeated map keys (loads_unique), and one encoding
per value (loads_strict)."""

from __future__ import annotations

import contextlib
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_commons.formats.cbor import MAX_DEPTH, CborInvalid, loads_strict, loads_unique

# RFC 8949 §5.6 and RFC 9052 §9: a map with the same key twice is not valid, wherever it is.
REPEATED = {
    "top-level map": "a2 01 00 01 01",
    "same key, longer spelling": "a2 01 00 18 01 01",
    "same negative key, longer spelling": "a2 26 00 38 06 01",
    "same text key, indefinite spelling": "a2 61 61 00 7f 61 61 ff 01",
    "indefinite map": "bf 01 00 01 01 ff",
    "map in an array": "82 00 a2 02 00 02 01",
    "map in a map value": "a1 01 a2 02 00 02 01",
    "map as a map key": "a1 a2 02 00 02 01 00",
    "map in a tag": "d9 ff 00 a2 02 00 02 01",
    "map in an indefinite array": "9f a2 02 00 02 01 ff",
    "same half and double float key": "a2 f9 3c 00 00 fb 3f f0 00 00 00 00 00 00 01",
    "equal array keys": "a2 82 01 02 00 82 01 02 01",
    # Distinct in CBOR, one key once decoded (1 == 1.0 == True in Python): refused rather
    # than silently keeping one of them.
    "1 and 1.0": "a2 01 00 f9 3c 00 01",
    "1 and true": "a2 01 00 f5 01",
}


@pytest.mark.parametrize("hexed", REPEATED.values(), ids=REPEATED.keys())
def test_a_repeated_map_key_is_refused_anywhere(hexed: str) -> None:
    data = bytes.fromhex(hexed)
    with pytest.raises(CborInvalid, match="repeated key"):
        loads_unique(data)
    with pytest.raises(CborInvalid):
        loads_strict(data)


# Valid CBOR in other serialisations than the preferred one: loads_unique reads it,
# loads_strict does not.
VALID_NOT_PREFERRED = {
    "indefinite map": ("bf 01 02 03 04 ff", {1: 2, 3: 4}),
    "indefinite array": ("9f 01 02 ff", [1, 2]),
    "chunked text": ("7f 61 61 61 62 ff", "ab"),
    "chunked bytes": ("5f 41 01 41 02 ff", b"\x01\x02"),
    "long argument": ("1a 00 00 00 07", 7),
    "half float": ("f9 3c 00", 1.0),
    "single float": ("fa 3f c0 00 00", 1.5),
    "distinct keys, one spelt long": ("a2 01 00 18 02 01", {1: 0, 2: 1}),
}


@pytest.mark.parametrize("case", VALID_NOT_PREFERRED.values(), ids=VALID_NOT_PREFERRED.keys())
def test_valid_cbor_in_any_serialisation_is_read(case: tuple[str, Any]) -> None:
    hexed, value = case
    data = bytes.fromhex(hexed)
    assert loads_unique(data) == value
    with pytest.raises(CborInvalid, match="preferred serialisation"):
        loads_strict(data)


def test_tags_are_read_as_cbor2_reads_them() -> None:
    assert loads_unique(bytes.fromhex("c1 1a 64 8c 5b ea")).year == 2023  # tag 1
    unknown = loads_unique(bytes.fromhex("d9 ff 00 01"))
    assert (unknown.tag, unknown.value) == (0xFF00, 1)


NOT_ONE_ITEM = {
    "empty": "",
    "trailing byte": "01 00",
    "truncated map": "a2 01 00 01",
    "truncated string": "63 61 62",
    "break outside indefinite": "ff",
    "reserved additional information": "1c",
    "unterminated indefinite map": "bf 01 00",
}


@pytest.mark.parametrize("hexed", NOT_ONE_ITEM.values(), ids=NOT_ONE_ITEM.keys())
def test_anything_but_one_well_formed_item_is_refused(hexed: str) -> None:
    with pytest.raises(CborInvalid):
        loads_unique(bytes.fromhex(hexed))


def test_nesting_is_bounded() -> None:
    assert loads_unique(b"\x81" * (MAX_DEPTH - 1) + b"\x00") is not None
    with pytest.raises(CborInvalid):
        loads_unique(b"\x81" * MAX_DEPTH + b"\x00")
    with pytest.raises(CborInvalid):
        loads_unique(b"\x81" * 100_000 + b"\x00")


def test_not_bytes_is_refused() -> None:
    with pytest.raises(CborInvalid):
        loads_unique("a1 01 02")  # type: ignore[arg-type]


_SCALARS = (
    st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.booleans()
    | st.none()
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.integers(-30, 30) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(_VALUES)
def test_what_cbor2_writes_is_read_back_by_both(value: Any) -> None:
    data = cbor2.dumps(value)
    assert loads_unique(data) == value
    assert loads_strict(data) == value


def _mutated(data: bytes, position: int, byte: int) -> bytes:
    if not data:
        return bytes([byte])
    at = position % len(data)
    return data[:at] + bytes([byte]) + data[at + 1 :]


@given(
    st.binary(max_size=64)
    | st.builds(_mutated, _VALUES.map(cbor2.dumps), st.integers(0, 63), st.integers(0, 255))
)
def test_any_bytes_are_a_value_or_cbor_invalid(data: bytes) -> None:
    # Whatever an outsider sends: a value or CborInvalid, never another exception.
    for read in (loads_unique, loads_strict):
        with contextlib.suppress(CborInvalid):
            read(data)
