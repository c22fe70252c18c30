from __future__ import annotations

import base64
import math
from enum import StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_commons.core.encoding import (
    b64_decode,
    b64_encode,
    b64url_decode,
    b64url_encode,
    canonical_json,
    canonical_json_reference,
    sha256_hex,
)
from credit_commons.core.errors import ValidationError


@given(st.binary(max_size=200))
def test_b64url_round_trip(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert "=" not in encoded
    assert b64url_decode(encoded) == data


@given(st.binary(max_size=200))
def test_b64_round_trip(data: bytes) -> None:
    assert b64_decode(b64_encode(data)) == data


@pytest.mark.parametrize(
    "bad",
    ["AA==", "A", "AB+/", "AB$C", "AB C", "AR"],  # padding, bad length, std alphabet, junk,
)
def test_b64url_rejects_malformed_and_non_canonical(bad: str) -> None:
    # "AR" has non-zero trailing bits: it would decode to the same byte as "AQ".
    with pytest.raises(ValidationError):
        b64url_decode(bad)


def _b64url_reference(text: str | bytes) -> bytes | None:
    # The standard library's strict decoder and its own encoder: the value, or None where
    # b64url_decode must refuse.
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if not raw.isascii() or b"=" in raw or len(raw) % 4 == 1:
        return None
    try:
        decoded = base64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=b"-_", validate=True)
    except ValueError:  # binascii.Error is one
        return None
    return decoded if base64.urlsafe_b64encode(decoded).rstrip(b"=") == raw else None


@given(st.text(alphabet="AQRgw_-+/=Zz09 \n\u00e9", max_size=12) | st.binary(max_size=12))
def test_b64url_decode_agrees_with_the_standard_library(text: str | bytes) -> None:
    expected = _b64url_reference(text)
    if expected is None:
        with pytest.raises(ValidationError):
            b64url_decode(text)
    else:
        assert b64url_decode(text) == expected


@pytest.mark.parametrize("bad", ["AQ", "AQ=", "A Q==", "AR=="])
def test_b64_rejects_malformed_and_non_canonical(bad: str) -> None:
    with pytest.raises(ValidationError):
        b64_decode(bad)


def test_sha256_hex_known_answer() -> None:
    # FIPS 180-2 example "abc".
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_canonical_json_orders_keys_and_numbers() -> None:
    assert canonical_json({"b": 1, "a": [1.0, 1e21, "\u20ac"]}) == (
        '{"a":[1,1e+21,"\u20ac"],"b":1}'.encode()
    )


@pytest.mark.parametrize(
    "bad",
    [math.nan, math.inf, 2**64, 2**53, -(2**53), {1: "x"}, {"a": "\ud800"}, {"\udfff": 1}],
)
def test_canonical_json_refuses_values_without_canonical_form(bad: object) -> None:
    with pytest.raises(ValidationError):
        canonical_json(bad)
    with pytest.raises(ValidationError):
        canonical_json_reference(bad)


# Every string, including control characters, quotes, backslashes, U+2028, astral
# characters and non-ASCII keys (which sort differently in UTF-16 and code points).
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"])
    | st.sampled_from('"\\\x00\x1f\x7f\u2028\ue000\U0001f600'),
    max_size=8,
)
_SCALARS = (
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | _TEXT
)
_JSON = st.recursive(
    _SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)
_PLAIN = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(max_codepoint=127), max_size=8), inner, max_size=4
        )
    ),
    max_leaves=20,
)


@given(_JSON)
def test_canonical_json_fast_path_gives_the_rfc8785_bytes(value: object) -> None:
    # Differential: the standard-library path and rfc8785 agree on every JSON value
    # (values with floats or non-ASCII keys take the rfc8785 path inside canonical_json).
    assert canonical_json(value) == canonical_json_reference(value)


@given(_PLAIN)
def test_canonical_json_fast_path_is_taken_and_agrees(value: object) -> None:
    # Values the fast path takes: still byte-identical to rfc8785.
    assert canonical_json(value) == canonical_json_reference(value)


def test_canonical_json_non_ascii_keys_sort_by_utf16_code_units() -> None:
    # U+E000 sorts after U+1F600 in UTF-16 (0xD83D...) but before it in code points.
    value = {"\ue000": 1, "\U0001f600": 2}
    assert canonical_json(value) == '{"\U0001f600":2,"\ue000":1}'.encode()


def test_canonical_json_enum_strings_take_the_reference_path() -> None:
    class Colour(StrEnum):
        RED = "red"

    assert canonical_json({"c": Colour.RED}) == b'{"c":"red"}'


_FLAT = st.dictionaries(
    st.text(alphabet=st.characters(max_codepoint=127), max_size=8),
    st.one_of(
        st.text(alphabet=st.characters(max_codepoint=127), max_size=12),
        st.integers(-(2**53) + 1, 2**53 - 1),
        st.booleans(),
        st.none(),
    ),
    max_size=5,
)


@given(_FLAT)
def test_flat_objects_written_directly_give_the_rfc8785_bytes(value: dict[str, object]) -> None:
    # Flat objects of printable-ASCII strings and safe integers are written member by member
    # (quotes, backslashes and control characters send a value to the encoder path).
    assert canonical_json(value) == canonical_json_reference(value)
