"""gateway/cached_read.py: a value read once per time to live."""

from __future__ import annotations

import threading

from credit_commons.gateway.cached_read import CachedRead


def counter(ttl: float) -> tuple[list[int], CachedRead[int]]:
    calls: list[int] = []

    def read() -> int:
        calls.append(1)
        return len(calls)

    return calls, CachedRead(read, ttl)


def test_a_fresh_value_is_read_once_within_its_ttl() -> None:
    calls, cached = counter(3600.0)
    assert [cached.get() for _ in range(5)] == [1, 1, 1, 1, 1]
    assert len(calls) == 1


def test_an_expired_value_is_read_again() -> None:
    calls, cached = counter(0.0)  # ttl 0: every get is past it
    assert [cached.get() for _ in range(3)] == [1, 2, 3]
    assert len(calls) == 3


def test_concurrent_callers_share_one_read() -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        started.set()
        release.wait(10)
        return 7

    cached = CachedRead(slow, 3600.0)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(cached.get())) for _ in range(4)]
    threads[0].start()
    assert started.wait(10)
    for t in threads[1:]:
        t.start()
    release.set()
    for t in threads:
        t.join(10)
    assert results == [7, 7, 7, 7]
    assert len(calls) == 1


def test_a_value_of_none_is_kept_like_any_other() -> None:
    calls: list[int] = []

    def read() -> None:
        calls.append(1)

    cached: CachedRead[None] = CachedRead(read, 3600.0)
    assert [cached.get() for _ in range(3)] == [None, None, None]
    assert len(calls) == 1
