"""The follower's batch reader (node/pull.py) against a real ``nats-server -js``: a full
batch, then what is there at once (``no_wait``: a caught-up follower does not wait for the
deadline), nothing when nothing comes, a message published while a fetch waits, a refused
request raised; a message delivered after its fetch returned comes with the next fetch (no
redelivery awaited); an earlier request's ``408`` does not end a later wait; a consumer
deleted while a request waits, or between requests (the server then answers nothing), is
reported lost.  Bounded by the fetches' own deadlines and counts."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import APIError
from tests.integration.federation.nats_server import NatsServer

from credit_commons.node.pull import ConsumerLost, PullConsumer

_LONG = 20.0  # a deadline no fetch that has messages at hand may wait out


async def _consumer(url: str, count: int, silence: float = 2.0) -> tuple[nats.NATS, PullConsumer]:
    nc = await nats.connect(servers=[url], allow_reconnect=False)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="PULLTEST", subjects=["pt.>"]))
    for i in range(count):
        await js.publish(f"pt.{i}", str(i).encode())
    config = ConsumerConfig(
        durable_name="reader",
        ack_policy=AckPolicy.ALL,
        deliver_policy=DeliverPolicy.ALL,
        max_ack_pending=64,
    )
    await js.add_consumer("PULLTEST", config)
    consumer = PullConsumer(nc, "PULLTEST", "reader", silence=silence)
    await consumer.start()
    return nc, consumer


def test_batches_then_what_is_there_then_nothing(nats_server: NatsServer) -> None:
    async def run() -> None:
        nc, consumer = await _consumer(nats_server.url, 5)
        try:
            first = await consumer.fetch(3, _LONG)
            assert [m.data for m in first] == [b"0", b"1", b"2"]
            started = time.monotonic()
            rest = await consumer.fetch(10, _LONG)
            assert [m.data for m in rest] == [b"3", b"4"]
            assert time.monotonic() - started < _LONG / 2  # not held to the deadline
            assert [m.metadata.sequence.stream for m in rest] == [4, 5]
            await rest[-1].ack()
            assert await consumer.fetch(10, 0.3) == []
            info = await nc.jetstream().consumer_info("PULLTEST", "reader")
            assert info.ack_floor is not None
            assert info.ack_floor.stream_seq == 5  # one acknowledgement for all five
            assert info.num_ack_pending == 0
        finally:
            await nc.close()

    asyncio.run(run())


def test_a_message_published_while_a_fetch_waits_is_returned(nats_server: NatsServer) -> None:
    async def run() -> None:
        nc, consumer = await _consumer(nats_server.url, 0)
        try:
            waiting = asyncio.create_task(consumer.fetch(1, _LONG))
            await asyncio.sleep(0.2)
            await nc.jetstream().publish("pt.late", b"late")
            got = await waiting
            assert [m.data for m in got] == [b"late"]
        finally:
            await nc.close()

    asyncio.run(run())


def test_a_refused_request_raises(nats_server: NatsServer) -> None:
    async def run() -> None:
        nc, consumer = await _consumer(nats_server.url, 3)
        try:
            # A request the server cannot read is refused with a 400, which the next fetch
            # raises (the follower's back-off then reconnects).
            await nc.publish(consumer._next, b"{not json", reply=f"{consumer._inbox}.x")
            with pytest.raises(APIError) as refused:
                await consumer.fetch(1, 1.0)
            assert refused.value.code == 400
        finally:
            await nc.close()

    asyncio.run(run())


def test_a_message_delivered_after_its_fetch_returned_comes_with_the_next(
    nats_server: NatsServer,
) -> None:
    async def run() -> None:
        nc, consumer = await _consumer(nats_server.url, 0)
        js = nc.jetstream()
        try:
            waiting = asyncio.create_task(consumer.fetch(5, _LONG))
            await asyncio.sleep(0.1)
            await js.publish("pt.a", b"a")
            assert [m.data for m in await waiting] == [b"a"]
            # The request (five asked, one delivered) is still open on the server: the next
            # message goes to it, after the fetch returned.
            await js.publish("pt.b", b"b")
            for _ in range(100):
                info = await js.consumer_info("PULLTEST", "reader")
                if info.delivered.stream_seq == 2:
                    break
                await asyncio.sleep(0.01)
            assert info.delivered.stream_seq == 2
            started = time.monotonic()
            late = await consumer.fetch(5, _LONG)
            assert [m.data for m in late] == [b"b"]
            assert late[0].metadata.num_delivered == 1  # the first delivery, kept
            assert time.monotonic() - started < _LONG / 2  # not waited for (ack_wait: 30 s)
        finally:
            await nc.close()

    asyncio.run(run())


def test_an_earlier_requests_status_does_not_end_a_later_wait(nats_server: NatsServer) -> None:
    async def run() -> None:
        nc, consumer = await _consumer(nats_server.url, 0)
        js = nc.jetstream()
        try:
            # A fetch given 1 s returns with the first message; its request expires at 1 s
            # and the server's 408 for it comes while the next fetch waits.
            waiting = asyncio.create_task(consumer.fetch(5, 1.0))
            await asyncio.sleep(0.1)
            await js.publish("pt.a", b"a")
            assert [m.data for m in await waiting] == [b"a"]
            waiting = asyncio.create_task(consumer.fetch(5, 6.0))
            await asyncio.sleep(1.8)  # past the first request's 408
            assert not waiting.done()
            await js.publish("pt.b", b"b")
            assert [m.data for m in await waiting] == [b"b"]
        finally:
            await nc.close()

    asyncio.run(run())


def test_a_consumer_deleted_while_a_request_waits_is_lost(nats_server: NatsServer) -> None:
    async def run() -> None:
        nc, consumer = await _consumer(nats_server.url, 0)
        try:
            waiting = asyncio.create_task(consumer.fetch(5, _LONG))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            await nc.jetstream().delete_consumer("PULLTEST", "reader")
            with pytest.raises(ConsumerLost) as lost:
                await waiting
            assert lost.value.reason == "Consumer Deleted"
            assert time.monotonic() - started < _LONG / 2  # at once, not at the deadline
        finally:
            await nc.close()

    asyncio.run(run())


def test_a_consumer_deleted_between_requests_is_lost(nats_server: NatsServer) -> None:
    async def run() -> None:
        nc, consumer = await _consumer(nats_server.url, 5, silence=0.5)
        try:
            # Three of five at once: the request is filled, none is left waiting, so the
            # deletion reaches no request and the server says nothing about it.
            assert len(await consumer.fetch(3, 1.0)) == 3
            await nc.jetstream().delete_consumer("PULLTEST", "reader")

            async def fetch_on() -> None:
                for _ in range(20):  # 20 x 0.1 s, the silence is 0.5 s
                    assert await consumer.fetch(5, 0.1) == []

            with pytest.raises(ConsumerLost) as lost:
                await fetch_on()
            assert lost.value.reason.startswith("no answer")
        finally:
            await nc.close()

    asyncio.run(run())


def test_a_deleted_stream_loses_its_consumer(nats_server: NatsServer) -> None:
    async def run() -> None:
        nc, consumer = await _consumer(nats_server.url, 0)
        try:
            waiting = asyncio.create_task(consumer.fetch(5, _LONG))
            await asyncio.sleep(0.2)
            await nc.jetstream().delete_stream("PULLTEST")
            with pytest.raises(ConsumerLost):
                await waiting
        finally:
            await nc.close()

    asyncio.run(run())
