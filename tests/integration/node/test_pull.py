"""The follower's batch reader (node/pull.py) against a real ``nats-server -js``: a full
batch, then what is there at once (``no_wait``: a caught-up follower does not wait for the
deadline), nothing when nothing comes, a message published while a fetch waits, and a
refused request raised.  Bounded by the fetches' own deadlines."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import APIError
from tests.integration.federation.nats_server import NatsServer

from credit_commons.node.pull import PullConsumer

_LONG = 20.0  # a deadline no fetch that has messages at hand may wait out


async def _consumer(url: str, count: int) -> tuple[nats.NATS, PullConsumer]:
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
    consumer = PullConsumer(nc, "PULLTEST", "reader")
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
            await nc.publish(consumer._next, b"{not json", reply=consumer._inbox)
            with pytest.raises(APIError) as refused:
                await consumer.fetch(1, 1.0)
            assert refused.value.code == 400
        finally:
            await nc.close()

    asyncio.run(run())
