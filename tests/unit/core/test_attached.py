"""``Attached``: one value per owner, made once, forgotten with the owner."""

from __future__ import annotations

import gc
import threading
import time

from credit_commons.core.attached import Attached


class Owner:
    pass


def test_one_value_per_owner_made_on_first_use() -> None:
    made: list[Owner] = []

    def make(owner: Owner) -> list[str]:
        made.append(owner)
        return []

    values = Attached[Owner, list[str]](make)
    first, second = Owner(), Owner()
    assert values.peek(first) is None
    values(first).append("a")
    assert values(first) == ["a"]
    assert values(second) == []
    assert made == [first, second]


def test_set_peek_and_pop() -> None:
    values = Attached[Owner, int](lambda _owner: 1)
    owner = Owner()
    values.set(owner, 7)
    assert values.peek(owner) == values(owner) == 7
    assert values.pop(owner) == 7
    assert values.pop(owner) is None
    assert values(owner) == 1


def test_a_value_goes_with_its_owner() -> None:
    values = Attached[Owner, bytes](lambda _owner: b"x" * 1000)
    owner = Owner()
    values(owner)
    assert len(values._values) == 1
    del owner
    gc.collect()
    assert len(values._values) == 0


def test_two_first_calls_make_one_value() -> None:
    calls = []

    def slow(_owner: Owner) -> object:
        calls.append(1)
        time.sleep(0.05)
        return object()

    values = Attached[Owner, object](slow)
    owner = Owner()
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(values(owner))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len({id(v) for v in seen}) == 1
