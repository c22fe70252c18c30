"""Unit tests for random status-list index allocation (issuer/status_index.py)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_commons.core.errors import ConfigurationError, ConflictError
from credit_commons.issuer.errors import (
    StatusListFull,
    StatusListInvalid,
)
from credit_commons.issuer.status_index import allocate_random_index, allocate_random_indexes

# -- random index allocation -----------------------------------------------------------------


class ScriptedRandom:
    """A fake random source that replays fixed draws and records the bounds it was asked for."""

    def __init__(self, draws: list[int]) -> None:
        self._draws: Iterator[int] = iter(draws)
        self.bounds: list[int] = []

    def randbelow(self, n: int) -> int:
        self.bounds.append(n)
        return next(self._draws)


def test_allocation_takes_the_first_free_draw() -> None:
    rng = ScriptedRandom([3, 1, 7])
    assert allocate_random_index(10, {3, 1}, randbelow=rng.randbelow) == 7
    assert rng.bounds == [10, 10, 10]


def test_allocation_with_a_bitmap() -> None:
    bitmap = bytes([0b0000_0101, 0])  # indexes 0 and 2 used, LSB first
    rng = ScriptedRandom([0, 2, 1])
    assert allocate_random_index(16, bitmap, randbelow=rng.randbelow) == 1


def test_allocation_falls_back_to_an_exact_scan() -> None:
    used = set(range(1000)) - {637}
    rng = ScriptedRandom([0] * 64 + [0])  # 64 rejected draws, then k = 0 of 1 free
    assert allocate_random_index(1000, used, randbelow=rng.randbelow) == 637
    assert rng.bounds[-1] == 1


def test_fallback_picks_the_kth_free_index() -> None:
    used = set(range(100)) - {10, 20, 30}
    rng = ScriptedRandom([0] * 64 + [2])
    assert allocate_random_index(100, used, randbelow=rng.randbelow) == 30


def test_full_list_raises() -> None:
    with pytest.raises(StatusListFull):
        allocate_random_index(4, {0, 1, 2, 3})
    with pytest.raises(StatusListFull):
        allocate_random_index(12, bytes([0xFF, 0x0F]))


def test_used_indexes_outside_the_list_are_ignored() -> None:
    assert allocate_random_index(1, {5, -1}) == 0


def test_bitmap_bits_beyond_size_are_ignored_and_short_bitmaps_rejected() -> None:
    assert allocate_random_index(4, bytes([0b1111_0111])) == 3
    with pytest.raises(StatusListInvalid):
        allocate_random_index(9, b"\x00")


@pytest.mark.parametrize("size", [0, -3, True])
def test_allocation_rejects_bad_sizes(size: int) -> None:
    with pytest.raises(StatusListInvalid):
        allocate_random_index(size, set())


@pytest.mark.parametrize("bad", [-1, 10, True])
def test_misbehaving_random_source_is_reported(bad: int) -> None:
    with pytest.raises(ConfigurationError):
        allocate_random_index(10, set(), randbelow=lambda n: bad)


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n)))))
def test_allocation_never_returns_a_used_index(case: tuple[int, set[int]]) -> None:
    size, used = case
    if len({i for i in used if i < size}) == size:
        with pytest.raises(StatusListFull):
            allocate_random_index(size, used)
        return
    index = allocate_random_index(size, used)
    assert 0 <= index < size
    assert index not in used


@pytest.mark.parametrize("dense", [False, True], ids=["rejection", "fallback"])
def test_allocation_is_uniform_over_free_indexes(dense: bool) -> None:
    # With 4 of 1024 free, 64 rejection draws all miss about 78% of the time, so the dense
    # case mostly exercises the exact fallback; the sparse case never needs it.
    size = 1024 if dense else 8
    free = [5, 17, 400, 1023] if dense else [0, 3, 6, 7]
    used = set(range(size)) - set(free)
    seeded = random.Random(20240501)
    randbelow: Callable[[int], int] = seeded.randrange
    counts = Counter(allocate_random_index(size, used, randbelow=randbelow) for _ in range(4000))
    assert set(counts) == set(free)
    # 1000 expected each; 5 standard deviations is about +/-137.
    assert all(abs(c - 1000) < 140 for c in counts.values()), counts


def _marked(bitmap: bytearray, size: int) -> set[int]:
    return {i for i in range(size) if bitmap[i >> 3] >> (i & 7) & 1}


@given(st.integers(1, 200).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1)))))
def test_batch_allocation_takes_distinct_free_indexes_and_marks_them(
    case: tuple[int, set[int]],
) -> None:
    size, used = case
    bitmap = bytearray(-(-size // 8))
    for i in used:
        bitmap[i >> 3] |= 1 << (i & 7)
    free = size - len(used)
    chosen = allocate_random_indexes(size, bitmap, free)  # every free index, then full
    assert len(set(chosen)) == len(chosen) == free
    assert not set(chosen) & used
    assert _marked(bitmap, size) == set(range(size))
    with pytest.raises(StatusListFull):
        allocate_random_indexes(size, bitmap, 1)


def test_batch_allocation_refuses_more_than_is_free_and_leaves_the_bitmap() -> None:
    bitmap = bytearray([0b1111_0110])
    with pytest.raises(StatusListFull):
        allocate_random_indexes(8, bitmap, 3)
    assert bitmap == bytearray([0b1111_0110])
    assert sorted(allocate_random_indexes(8, bitmap, 2)) == [0, 3]


@pytest.mark.parametrize("count", [-1, True])
def test_batch_allocation_rejects_bad_counts(count: int) -> None:
    with pytest.raises(ConfigurationError):
        allocate_random_indexes(8, bytearray(1), count)


def test_batch_allocation_follows_the_random_source() -> None:
    rng = ScriptedRandom([5, 5, 2])  # the second draw of 5 is now used: rejected
    bitmap = bytearray(2)
    assert allocate_random_indexes(16, bitmap, 2, randbelow=rng.randbelow) == [5, 2]
    assert rng.bounds == [16, 16, 16]


def test_batch_allocation_is_uniform() -> None:
    # The first index of each batch of two from four free slots: uniform over the four.
    seeded = random.Random(20261122)
    counts: Counter[int] = Counter()
    for _ in range(4000):
        bitmap = bytearray([0b1111_0000])
        counts[allocate_random_indexes(8, bitmap, 2, randbelow=seeded.randrange)[0]] += 1
    assert set(counts) == {0, 1, 2, 3}
    assert all(abs(c - 1000) < 140 for c in counts.values()), counts


def test_a_full_list_is_a_conflict() -> None:
    assert issubclass(StatusListFull, ConflictError)
    assert StatusListFull.code == "status_list.full"
