"""Unit tests of backoff_delay: exponential backoff with full jitter, randomness injected."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_commons.core.errors import ValidationError
from credit_commons.ledger.anchors import backoff_delay


def test_ceiling_doubles_until_cap() -> None:
    delays = [backoff_delay(n, base=0.5, cap=30.0, jitter=lambda: 1.0) for n in range(10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


def test_delay_is_the_jitter_fraction_of_the_ceiling() -> None:
    assert backoff_delay(3, base=1.0, cap=60.0, jitter=lambda: 0.25) == 2.0
    assert backoff_delay(3, base=1.0, cap=60.0, jitter=lambda: 0.0) == 0.0


def test_same_jitter_gives_same_delays() -> None:
    first = random.Random(7)
    second = random.Random(7)
    a = [backoff_delay(n, base=1.0, cap=100.0, jitter=first.random) for n in range(20)]
    b = [backoff_delay(n, base=1.0, cap=100.0, jitter=second.random) for n in range(20)]
    assert a == b


def test_huge_attempts_stay_at_the_cap() -> None:
    for attempt in (1023, 1024, 10**6):
        assert backoff_delay(attempt, base=3.0, cap=5.0, jitter=lambda: 1.0) == 5.0


@given(
    attempt=st.integers(min_value=0, max_value=5000),
    base=st.floats(min_value=1e-3, max_value=100.0),
    extra=st.floats(min_value=0.0, max_value=1e4),
    draw=st.floats(min_value=0.0, max_value=1.0),
)
def test_delay_is_within_bounds_and_monotone(
    attempt: int, base: float, extra: float, draw: float
) -> None:
    cap = base + extra
    delay = backoff_delay(attempt, base=base, cap=cap, jitter=lambda: draw)
    assert 0.0 <= delay <= cap
    # With the jitter fixed, a later attempt never waits less.
    assert backoff_delay(attempt + 1, base=base, cap=cap, jitter=lambda: draw) >= delay


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "draw"),
    [
        (-1, 1.0, 10.0, 0.5),
        (True, 1.0, 10.0, 0.5),
        (1.0, 1.0, 10.0, 0.5),
        (0, 0.0, 10.0, 0.5),
        (0, -1.0, 10.0, 0.5),
        (0, float("nan"), 10.0, 0.5),
        (0, float("inf"), float("inf"), 0.5),
        (0, 2.0, 1.0, 0.5),
        (0, 1.0, float("inf"), 0.5),
        (0, 1.0, float("nan"), 0.5),
        (0, 1.0, 10.0, -0.1),
        (0, 1.0, 10.0, 1.1),
        (0, 1.0, 10.0, float("nan")),
    ],
)
def test_rejects_bad_arguments(attempt: object, base: float, cap: float, draw: float) -> None:
    with pytest.raises(ValidationError):
        backoff_delay(attempt, base=base, cap=cap, jitter=lambda: draw)  # type: ignore[arg-type]
