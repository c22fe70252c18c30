from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_commons.core.encoding import (
    b64_decode,
    b64_encode,
    b64url_decode,
    b64url_encode,
    canonical_json,
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


@pytest.mark.parametrize("bad", [math.nan, math.inf, 2**64, {1: "x"}])
def test_canonical_json_refuses_values_without_canonical_form(bad: object) -> None:
    with pytest.raises(ValidationError):
        canonical_json(bad)
