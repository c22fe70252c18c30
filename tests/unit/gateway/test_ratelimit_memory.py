"""The limiter's in-process counters (gateway/ratelimit_memory.py): the moving and fixed
windows against a naive reference, expiry on a moved clock, bounded keys, no threads."""

from __future__ import annotations

import random
import threading

import pytest
from limits import parse
from limits.errors import StorageError
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from credit_commons.gateway.ratelimit import RateLimited, RateLimits
from credit_commons.gateway.ratelimit_memory import ProcessMemoryStorage


class Clock:
    def __init__(self, at: float = 1_000_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def _naive_moving(hits: list[float], now: float, limit: int, expiry: int) -> bool:
    # The definition: allowed when fewer than `limit` counted requests are under `expiry`
    # seconds old.
    return sum(1 for t in hits if t > now - expiry) < limit


def test_moving_window_matches_the_naive_definition() -> None:
    rng = random.Random(16)
    for _ in range(40):
        clock = Clock()
        storage = ProcessMemoryStorage(now=clock)
        limit, expiry = rng.randint(1, 6), rng.choice([1, 5, 60])
        counted: list[float] = []
        for _ in range(200):
            clock.at += rng.choice([0.0, 0.1, 0.5, 1.0, 2.5, 7.0])
            expected = _naive_moving(counted, clock.at, limit, expiry)
            assert storage.acquire_entry("k", limit, expiry) is expected
            if expected:
                counted.append(clock.at)
            start, count = storage.get_moving_window("k", limit, expiry)
            in_window = [t for t in counted if t > clock.at - expiry]
            assert count == len(in_window)
            assert start == (min(in_window) if in_window else clock.at)


def test_a_refused_request_is_not_counted_and_the_window_moves_on() -> None:
    clock = Clock()
    storage = ProcessMemoryStorage(now=clock)
    assert storage.acquire_entry("k", 2, 60)
    clock.at += 30
    assert storage.acquire_entry("k", 2, 60)
    for _ in range(5):
        assert not storage.acquire_entry("k", 2, 60)
    assert storage.get_moving_window("k", 2, 60)[1] == 2
    clock.at += 30  # the first request is 60 s old: out of the window
    assert storage.acquire_entry("k", 2, 60)
    assert not storage.acquire_entry("k", 2, 60)
    assert not storage.acquire_entry("other", 1, 60, amount=2)  # more than the limit at once


def test_keys_whose_window_passed_are_dropped_as_counting_goes_on() -> None:
    clock = Clock()
    storage = ProcessMemoryStorage(now=clock)
    for i in range(1000):
        assert storage.acquire_entry(f"address-{i}", 5, 60)
        assert storage.incr(f"fixed-{i}", 60) == 1
    assert storage.keys() == 2000
    clock.at += 61
    assert storage.acquire_entry("late", 5, 60)
    assert storage.incr("late-fixed", 60) == 1
    assert storage.keys() == 2
    assert storage.get_moving_window("address-3", 5, 60) == (clock.at, 0)
    assert storage.get("fixed-3") == 0


def test_fixed_window_counts_until_it_ends() -> None:
    clock = Clock()
    storage = ProcessMemoryStorage(now=clock)
    assert storage.incr("k", 10) == 1
    assert storage.incr("k", 10, amount=2) == 3
    assert storage.get("k") == 3
    assert storage.get_expiry("k") == clock.at + 10
    clock.at += 10
    assert storage.get("k") == 0
    assert storage.get_expiry("k") == clock.at
    assert storage.incr("k", 10) == 1
    storage.clear("k")
    assert storage.get("k") == 0
    assert storage.check()
    storage.incr("a", 10)
    storage.acquire_entry("b", 3, 10)
    assert storage.reset() == 2
    assert storage.keys() == 0


@pytest.mark.parametrize("strategy", [MovingWindowRateLimiter, FixedWindowRateLimiter])
def test_the_limits_strategies_run_over_it(strategy: type) -> None:
    clock = Clock()
    limiter = strategy(ProcessMemoryStorage(now=clock))
    item = parse("3/minute")
    assert [limiter.hit(item, "ns", "who") for _ in range(4)] == [True, True, True, False]
    stats = limiter.get_window_stats(item, "ns", "who")
    assert stats.remaining == 0
    assert stats.reset_time == clock.at + 60
    clock.at += 60
    assert limiter.hit(item, "ns", "who")


def test_counting_starts_no_thread() -> None:
    # limits' MemoryStorage started a timer thread per request; this one never does.
    storage = ProcessMemoryStorage()
    before = threading.active_count()
    started: list[threading.Thread] = []
    original = threading.Thread.start

    def spy(thread: threading.Thread) -> None:
        started.append(thread)
        original(thread)

    threading.Thread.start = spy  # type: ignore[method-assign]
    try:
        for i in range(50):
            storage.acquire_entry(f"k{i % 3}", 100, 1)
            storage.get_moving_window(f"k{i % 3}", 100, 1)
            storage.incr(f"f{i % 3}", 1)
    finally:
        threading.Thread.start = original  # type: ignore[method-assign]
    assert started == []
    assert threading.active_count() == before


def test_the_limiter_uses_it_and_follows_its_clock() -> None:
    clock = Clock()
    limiter = RateLimits(client_limit="2/minute", ip_limit="1/second", now=clock)
    assert limiter.hit_client("api", "lnd_a").remaining == 1
    assert limiter.hit_client("api", "lnd_a").remaining == 0
    with pytest.raises(RateLimited) as refused:
        limiter.hit_client("api", "lnd_a")
    assert refused.value.state.reset_after == 60
    clock.at += 60
    assert limiter.hit_client("api", "lnd_a").remaining == 1


def test_a_storage_error_is_wrapped() -> None:
    class Broken(ProcessMemoryStorage):
        def get(self, key: str) -> int:
            raise ValueError("broken")

    with pytest.raises(StorageError):
        Broken(wrap_exceptions=True).get("k")
