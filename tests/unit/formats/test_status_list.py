"""Unit tests for the status-list encodings (formats/status_list.py and
formats/bitstring_status_list.py), checked against naive references."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credit_commons.core.errors import ConfigurationError, ValidationError
from credit_commons.formats.bitstring_status_list import BitstringStatusList
from credit_commons.formats.status_list import (
    BITSTRING_MIN_ENTRIES,
    BITSTRING_STATUS_SIZE_MAX,
    StatusIndexOutOfRange,
    StatusList,
    StatusListInvalid,
    StatusListTooShort,
    StatusValueInvalid,
    TokenStatus,
)

# -- naive references: build the bit sequence explicitly, then pack it -----------------------


def naive_ietf_bytes(bits: int, statuses: list[int]) -> bytes:
    """TSL §4.1: bit j of status i is bit (i*bits + j) of the array, LSB first in each byte."""
    sequence: list[int] = []
    for value in statuses:
        sequence.extend((value >> j) & 1 for j in range(bits))
    sequence.extend([0] * (-len(sequence) % 8))
    return bytes(sum(sequence[k + j] << j for j in range(8)) for k in range(0, len(sequence), 8))


def naive_w3c_bytes(status_size: int, statuses: list[int]) -> bytes:
    """W3C §2.2: the bitstring is read left to right, most significant bit of byte 0 first."""
    sequence: list[int] = []
    for value in statuses:
        sequence.extend((value >> (status_size - 1 - j)) & 1 for j in range(status_size))
    sequence.extend([0] * (-len(sequence) % 8))
    return bytes(
        sum(sequence[k + j] << (7 - j) for j in range(8)) for k in range(0, len(sequence), 8)
    )


# -- IETF Token Status List ------------------------------------------------------------------


def test_token_status_values_match_the_draft() -> None:
    assert [int(s) for s in TokenStatus] == [0, 1, 2, 3]


def test_new_list_is_all_valid_and_rounds_up_to_a_byte() -> None:
    sl = StatusList.new(10, 2)
    assert sl.bits == 2
    assert sl.size == len(sl) == 12
    assert sl.to_bytes() == bytes(3)
    assert all(sl.get(i) == TokenStatus.VALID for i in range(sl.size))


def test_get_and_set_follow_lsb_first_packing() -> None:
    sl = StatusList.new(8, 1)
    sl.set(0, 1)
    assert sl.to_bytes() == b"\x01"
    sl.set(7, 1)
    assert sl.to_bytes() == b"\x81"
    sl.set(0, 0)
    assert sl.to_bytes() == b"\x80"
    two = StatusList.new(4, 2)
    two.set(1, TokenStatus.SUSPENDED)
    assert two.to_bytes() == bytes([0b0000_1000])
    assert two.get(1) == TokenStatus.SUSPENDED


@pytest.mark.parametrize("bits", [0, 3, 5, 6, 7, 9, 16, -1])
def test_unsupported_bits_are_rejected(bits: int) -> None:
    with pytest.raises(StatusListInvalid):
        StatusList.new(8, bits)
    with pytest.raises(StatusListInvalid):
        StatusList(bits, b"\x00")


@pytest.mark.parametrize("size", [0, -1, True])
def test_bad_size_is_rejected(size: int) -> None:
    with pytest.raises(StatusListInvalid):
        StatusList.new(size, 1)


def test_empty_bytes_are_rejected() -> None:
    with pytest.raises(StatusListInvalid):
        StatusList(1, b"")


@pytest.mark.parametrize("index", [-1, 16, 10**9, True])
def test_index_out_of_range(index: int) -> None:
    sl = StatusList.new(16, 1)
    with pytest.raises(StatusIndexOutOfRange) as info:
        sl.get(index)
    assert info.value.code == "status_list.index_out_of_range"
    with pytest.raises(StatusIndexOutOfRange):
        sl.set(index, 1)


@pytest.mark.parametrize(("bits", "value"), [(1, 2), (2, 4), (4, 16), (8, 256), (8, -1)])
def test_value_that_does_not_fit_is_rejected(bits: int, value: int) -> None:
    sl = StatusList.new(8, bits)
    with pytest.raises(StatusValueInvalid):
        sl.set(0, value)
    assert sl.to_bytes() == bytes(len(sl.to_bytes()))


def test_errors_are_validation_errors_with_stable_codes() -> None:
    assert issubclass(StatusListInvalid, ValidationError)
    assert StatusListInvalid.code == "status_list.invalid"


def test_aggregation_uri_round_trips() -> None:
    sl = StatusList.new(16, 1)
    sl.aggregation_uri = "https://example.com/statuslists"
    assert StatusList.from_json(sl.to_json()) == sl
    assert StatusList.from_cbor(sl.to_cbor()) == sl
    assert StatusList.from_json(sl.to_json()).aggregation_uri == sl.aggregation_uri


def test_equality_and_hash() -> None:
    a = StatusList.new(8, 1)
    b = StatusList.new(8, 1)
    assert a == b
    b.set(3, 1)
    assert a != b
    assert a != StatusList.new(4, 2)  # same bytes, different width
    assert a != object()
    with pytest.raises(TypeError):
        hash(a)


def test_compressed_form_is_zlib() -> None:
    sl = StatusList.new(64, 1)
    compressed = sl.compress()
    assert compressed[0] == 0x78  # RFC 1950 CMF: deflate, 32 KiB window
    assert StatusList.from_compressed(1, compressed) == sl


def test_from_compressed_rejects_non_bytes_and_bad_limits() -> None:
    with pytest.raises(StatusListInvalid):
        StatusList.from_compressed(1, "eNo=")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        StatusList.from_compressed(1, StatusList.new(8).compress(), max_decompressed_bytes=0)


ietf_lists = st.sampled_from([1, 2, 4, 8]).flatmap(
    lambda bits: st.tuples(
        st.just(bits),
        st.lists(st.integers(0, (1 << bits) - 1), min_size=1, max_size=300),
    )
)


@given(ietf_lists)
def test_ietf_packing_matches_naive_reference(case: tuple[int, list[int]]) -> None:
    bits, statuses = case
    sl = StatusList.new(len(statuses), bits)
    for index, value in enumerate(statuses):
        sl.set(index, value)
    assert sl.to_bytes() == naive_ietf_bytes(bits, statuses)
    assert [sl.get(i) for i in range(len(statuses))] == statuses


@given(ietf_lists)
def test_ietf_json_and_cbor_round_trip(case: tuple[int, list[int]]) -> None:
    bits, statuses = case
    sl = StatusList(bits, naive_ietf_bytes(bits, statuses))
    assert StatusList.from_json(sl.to_json()) == sl
    assert StatusList.from_cbor(sl.to_cbor()) == sl


@given(st.binary(min_size=1, max_size=70_000), st.sampled_from([1, 2, 4, 8]))
@settings(max_examples=30)
def test_cbor_lengths_use_every_head_width(data: bytes, bits: int) -> None:
    # Byte strings from 1 byte to ~70 KB exercise 1-, 2- and 4-byte CBOR length heads.
    sl = StatusList(bits, data)
    assert StatusList.from_cbor(sl.to_cbor()) == sl


# -- W3C Bitstring Status List ---------------------------------------------------------------


def test_new_bitstring_defaults_to_the_spec_minimum() -> None:
    bl = BitstringStatusList.new()
    assert bl.size == BITSTRING_MIN_ENTRIES
    assert bl.status_size == 1
    assert bl.to_bytes() == bytes(16384)


def test_bitstring_below_minimum_is_rejected() -> None:
    with pytest.raises(StatusListTooShort) as info:
        BitstringStatusList.new(BITSTRING_MIN_ENTRIES - 8)
    assert info.value.code == "status_list.too_short"
    assert info.value.extra["min_entries"] == BITSTRING_MIN_ENTRIES
    # An ecosystem may set a lower bound (W3C §3.2 step 2).
    assert BitstringStatusList.new(8, min_entries=8).size == 8


def test_bitstring_set_is_msb_first() -> None:
    bl = BitstringStatusList.new(16, min_entries=1)
    bl.set(0, 1)
    assert bl.to_bytes() == b"\x80\x00"
    bl.set(15, 1)
    assert bl.to_bytes() == b"\x80\x01"


def test_multi_bit_entries_straddle_bytes_in_order() -> None:
    # statusSize 3: entry 2 occupies bits 6..8, across bytes 0 and 1.
    bl = BitstringStatusList.new(8, status_size=3, min_entries=1)
    bl.set(2, 0b101)
    assert bl.to_bytes() == bytes([0b0000_0010, 0b1000_0000, 0])
    assert bl.get(2) == 0b101
    assert bl.get(1) == 0
    assert bl.get(3) == 0


@pytest.mark.parametrize("status_size", [0, -1, BITSTRING_STATUS_SIZE_MAX + 1, True])
def test_bad_status_size_is_rejected(status_size: int) -> None:
    with pytest.raises(StatusListInvalid):
        BitstringStatusList.new(8, status_size=status_size, min_entries=1)
    with pytest.raises(StatusListInvalid):
        BitstringStatusList.decode(BitstringStatusList.new().encode(), status_size=status_size)


def test_bitstring_index_and_value_checks() -> None:
    bl = BitstringStatusList.new(8, status_size=2, min_entries=1)
    with pytest.raises(StatusIndexOutOfRange):
        bl.get(8)
    with pytest.raises(StatusValueInvalid):
        bl.set(0, 4)


def test_encoded_list_is_deterministic_multibase_gzip() -> None:
    bl = BitstringStatusList.new()
    encoded = bl.encode()
    assert encoded == BitstringStatusList.new().encode()
    assert encoded.startswith("uH4sI")  # 'u' + base64url of the gzip magic 1f 8b 08


def test_bad_min_entries_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        BitstringStatusList(bytes(8), min_entries=0)


w3c_lists = st.integers(1, 12).flatmap(
    lambda size: st.tuples(
        st.just(size),
        st.lists(st.integers(0, (1 << size) - 1), min_size=1, max_size=200),
    )
)


@given(w3c_lists)
def test_w3c_packing_matches_naive_reference(case: tuple[int, list[int]]) -> None:
    status_size, statuses = case
    bl = BitstringStatusList.new(len(statuses), status_size=status_size, min_entries=1)
    for index, value in enumerate(statuses):
        bl.set(index, value)
    assert bl.to_bytes() == naive_w3c_bytes(status_size, statuses)
    assert [bl.get(i) for i in range(len(statuses))] == statuses


@given(w3c_lists)
def test_w3c_encode_decode_round_trip(case: tuple[int, list[int]]) -> None:
    status_size, statuses = case
    bl = BitstringStatusList(
        naive_w3c_bytes(status_size, statuses), status_size=status_size, min_entries=1
    )
    again = BitstringStatusList.decode(bl.encode(), status_size=status_size, min_entries=1)
    assert again == bl


@given(st.lists(st.integers(0, 1), min_size=8, max_size=200))
def test_the_two_bit_orders_differ_exactly_by_bit_reversal(statuses: list[int]) -> None:
    ietf = naive_ietf_bytes(1, statuses)
    w3c = naive_w3c_bytes(1, statuses)
    assert bytes(int(f"{b:08b}"[::-1], 2) for b in ietf) == w3c
