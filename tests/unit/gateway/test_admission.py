"""The admission limiter of a route class (gateway/admission.py): a bounded number run, a
bounded queue waits in order for a bounded time, and everything else is refused."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from tests.conftest import make_settings

from credit_commons.gateway.admission import ClassLimiter, Overloaded, capacities
from credit_commons.gateway.route_groups import CLASS_OF_GROUP, GROUPS, READ, STREAM, WRITE


def test_capacity_then_queue_then_refusal() -> None:
    async def scenario() -> list[str]:
        limiter = ClassLimiter("write", capacity=2, queue=1, wait=5)
        events: list[str] = []
        await limiter.acquire()
        await limiter.acquire()
        assert limiter.in_flight == 2

        async def third() -> None:
            await limiter.acquire()
            events.append("third admitted")

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(third)
            await anyio.wait_all_tasks_blocked()
            assert limiter.waiting == 1
            with pytest.raises(Overloaded) as refused:
                await limiter.acquire()  # the queue (1) is full
            events.append(refused.value.reason)
            limiter.release()  # the turn goes to the waiter, not back to the pool
        assert limiter.in_flight == 2
        assert limiter.waiting == 0
        limiter.release()
        limiter.release()
        assert limiter.in_flight == 0
        return events

    assert anyio.run(scenario) == ["queue_full", "third admitted"]


def test_a_wait_that_runs_out_is_refused_and_leaves_the_queue() -> None:
    async def scenario() -> None:
        limiter = ClassLimiter("write", capacity=1, queue=4, wait=0.05)
        await limiter.acquire()
        with pytest.raises(Overloaded) as refused:
            await limiter.acquire()
        assert refused.value.reason == "timeout"
        assert refused.value.status == 503
        assert refused.value.retry_after == 1
        assert limiter.waiting == 0
        limiter.release()
        await limiter.acquire()  # free again
        limiter.release()
        assert limiter.in_flight == 0

    anyio.run(scenario)


def test_waiters_are_admitted_in_order_and_a_cancelled_one_gives_its_turn_on() -> None:
    async def scenario() -> list[int]:
        limiter = ClassLimiter("read", capacity=1, queue=8, wait=5)
        order: list[int] = []
        await limiter.acquire()

        async def waiter(n: int) -> None:
            await limiter.acquire()
            order.append(n)
            limiter.release()

        async with anyio.create_task_group() as tasks:
            for n in range(3):
                tasks.start_soon(waiter, n)
                await anyio.wait_all_tasks_blocked()
            with anyio.CancelScope() as cancelled:
                cancelled.cancel()
                await limiter.acquire()  # cancelled while queued: never admitted
            assert limiter.waiting == 3
            limiter.release()
        assert limiter.in_flight == 0
        assert limiter.waiting == 0
        return order

    assert anyio.run(scenario) == [0, 1, 2]


def test_capacities_follow_the_database(tmp_path: Path) -> None:
    assert capacities(make_settings(tmp_path), "sqlite") == {WRITE: 4, READ: 8}
    pooled = make_settings(tmp_path, db_pool_size=12)
    assert capacities(pooled, "postgresql") == {WRITE: 6, READ: 6}
    tuned = make_settings(tmp_path, admission_writers=2, admission_readers=3)
    assert capacities(tuned, "postgresql") == {WRITE: 2, READ: 3}


def test_every_route_group_has_a_class() -> None:
    assert set(CLASS_OF_GROUP) == {group.name for group in GROUPS}
    assert set(CLASS_OF_GROUP.values()) == {WRITE, READ, STREAM}
    # Only the event streams go unadmitted (their own slots bound them).
    assert [g for g, c in CLASS_OF_GROUP.items() if c == STREAM] == ["subscribe"]
