from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_commons.core.clock import FixedClock, SystemClock, utc
from credit_commons.core.errors import ValidationError
from credit_commons.core.ids import IdGenerator, _encode, _encode_reference, is_valid_id, new_id

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_ids_are_sortable_by_time_and_monotonic_within_a_millisecond() -> None:
    clock = FixedClock(T0)
    gen = IdGenerator(clock, randbits=lambda n: (1 << n) - 2)  # near overflow on purpose
    same_ms = [gen.new("evt") for _ in range(5)]
    clock.advance(timedelta(milliseconds=1))
    later = gen.new("evt")
    assert same_ms == sorted(same_ms)
    assert len(set(same_ms)) == 5
    assert later > same_ms[-1]
    assert all(is_valid_id(i) for i in [*same_ms, later])


def test_ids_from_later_times_sort_after_earlier_ones() -> None:
    a = IdGenerator(FixedClock(T0)).new()
    b = IdGenerator(FixedClock(T0 + timedelta(seconds=1))).new()
    assert a < b
    assert len(a) == 26


def test_new_id_shape_and_prefix_validation() -> None:
    assert is_valid_id(new_id("key"))
    assert not is_valid_id("evt_" + "I" * 26)  # I is not in Crockford's alphabet
    with pytest.raises(ValidationError):
        new_id("Bad Prefix")


def test_fixed_clock_only_moves_forward() -> None:
    clock = FixedClock(T0)
    clock.advance(timedelta(seconds=5))
    assert clock.now() == T0 + timedelta(seconds=5)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(seconds=-1))


def test_utc_normalises_naive_and_offset_datetimes() -> None:
    assert utc(datetime(2026, 1, 1)).tzinfo is UTC
    offset = datetime.fromisoformat("2026-01-01T05:30:00+05:30")
    assert utc(offset) == datetime(2026, 1, 1, tzinfo=UTC)
    assert SystemClock().now().tzinfo is UTC


@given(st.integers(min_value=0, max_value=2**130 - 1))
def test_base32_encoding_matches_the_digit_by_digit_reference(value: int) -> None:
    assert _encode(value) == _encode_reference(value)


def test_base32_encoding_known_values() -> None:
    # ULID spec: 26 Crockford digits, the first one at most 7.
    assert _encode(0) == "0" * 26
    assert _encode(2**128 - 1) == "7" + "Z" * 25
    assert _encode(2**130 - 1) == "Z" * 26
    assert _encode(31 * 32 + 10) == "0" * 24 + "ZA"
