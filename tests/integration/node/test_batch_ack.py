"""One acknowledgement a batch (``AckPolicy.ALL``) against a real NATS JetStream, on SQLite
and PostgreSQL (node/follower.py): a node whose durable consumers were made before (one
acknowledgement a message, ``AckPolicy.EXPLICIT``) has them made again from its cursor and
asks for nothing it stored; one whose mirror lost its last messages (restored from an older
copy) has them made again from its cursor and stores those again; a batch whose storage
failed — the stream's first, which no later batch may overtake — is delivered again,
stored once, and only then acknowledged, up to the stream's last message, nothing left
pending.  Bounded by counts of polls, never by wall time."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import sqlalchemy as sa
from fastapi.testclient import TestClient
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy
from tests.integration.federation.nats_server import NatsServer
from tests.integration.node.test_follow import _log_size, _publish, _wait_for
from tests.integration.node.test_mirror import _counters, _Platform, _record

from credit_commons.core.db import transaction
from credit_commons.core.net import FetchFailed
from credit_commons.federation import STREAMS, Publisher
from credit_commons.node import Follower, Mirror
from credit_commons.node import store as node_store
from credit_commons.node.models import NodeMessageRow
from credit_commons.runtime import Runtime

_EVENTS = "COMMONS_EVENTS"


def _consumers(url: str, node_id: str) -> dict[str, ConsumerInfo]:
    async def read() -> dict[str, ConsumerInfo]:
        nc = await nats.connect(servers=[url], allow_reconnect=False)
        try:
            js = nc.jetstream()
            return {s.name: await js.consumer_info(s.name, f"{node_id}-{s.name}") for s in STREAMS}
        finally:
            await nc.close()

    return asyncio.run(read())


def _make_explicit_consumers(url: str, node_id: str) -> None:
    """Each stream's consumer as a node made it before batch acknowledgements: deleted,
    then made with one acknowledgement a message, delivering from the stream's start."""

    async def remake() -> None:
        nc = await nats.connect(servers=[url], allow_reconnect=False)
        try:
            js = nc.jetstream()
            for spec in STREAMS:
                name = f"{node_id}-{spec.name}"
                await js.delete_consumer(spec.name, name)
                config = ConsumerConfig(
                    durable_name=name,
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_wait=30.0,
                    max_ack_pending=128,
                )
                await js.add_consumer(spec.name, config)
        finally:
            await nc.close()

    asyncio.run(remake())


def test_a_consumer_made_before_batch_acks_is_made_again_from_the_cursor(
    runtime: Runtime, client: TestClient, nats_server: NatsServer
) -> None:
    rt = runtime
    blobs = _record(rt, 120)
    platform = _Platform(client, blobs)
    mirror = Mirror(rt.sessions, platform, rt.clock)
    mirror.start()
    publisher = Publisher(rt, nats_server.url, batch=50)
    try:
        _publish(publisher)
        follower = Follower(mirror, nats_server.url, "node-test", batch=32, idle=0.05)
        follower.start()
        _wait_for(rt, 120, _log_size(client))
        follower.stop()
        cursor = _counters(rt)[f"seq.{_EVENTS}"]
        assert cursor == 120

        # The node's consumers as an older node left them; more events meanwhile.
        _make_explicit_consumers(nats_server.url, "node-test")
        blobs.update(_record(rt, 80))
        _publish(publisher)
        follower = Follower(mirror, nats_server.url, "node-test", batch=32, idle=0.05)
        follower.start()
        _wait_for(rt, 200, _log_size(client))
        follower.stop()
    finally:
        publisher.close()
    found = _consumers(nats_server.url, "node-test")[_EVENTS]
    assert AckPolicy(found.config.ack_policy) is AckPolicy.ALL
    assert DeliverPolicy(found.config.deliver_policy) is DeliverPolicy.BY_START_SEQUENCE
    assert found.config.opt_start_seq == cursor + 1
    # Made again from the cursor: only the 80 new messages delivered, all acknowledged.
    assert found.delivered.consumer_seq == 80
    assert found.ack_floor.stream_seq == 200
    assert found.num_ack_pending == 0
    counters = _counters(rt)
    assert not [name for name in counters if name.startswith("dropped.")]
    assert counters[f"seq.{_EVENTS}"] == 200
    assert platform.blob_calls == 200  # each blob fetched once: nothing processed twice


def _forget_last_events(rt: Runtime, count: int) -> None:
    """The mirror as an older copy of it was: its last ``count`` events and its cursor and
    count of them as they were before."""
    with transaction(rt.sessions) as session:
        rows = session.scalars(
            sa.select(NodeMessageRow)
            .where(NodeMessageRow.stream == _EVENTS)
            .order_by(NodeMessageRow.position.desc())
            .limit(count)
        ).all()
        for row in rows:
            session.delete(row)
        for name in (f"seq.{_EVENTS}", f"accepted.{_EVENTS}"):
            node_store.set_counter(session, name, node_store.counter(session, name) - count)


def test_a_mirror_behind_its_consumer_has_it_made_again_from_the_cursor(
    runtime: Runtime, client: TestClient, nats_server: NatsServer
) -> None:
    rt = runtime
    blobs = _record(rt, 120)
    platform = _Platform(client, blobs)
    mirror = Mirror(rt.sessions, platform, rt.clock)
    mirror.start()
    publisher = Publisher(rt, nats_server.url, batch=50)
    try:
        _publish(publisher)
        follower = Follower(mirror, nats_server.url, "node-test", batch=32, idle=0.05)
        follower.start()
        _wait_for(rt, 120, _log_size(client))
        follower.stop()
        # The consumer acknowledged 120; the mirror, restored, holds 100.
        _forget_last_events(rt, 20)
        follower = Follower(mirror, nats_server.url, "node-test", batch=32, idle=0.05)
        follower.start()
        _wait_for(rt, 120, _log_size(client))
        follower.stop()
    finally:
        publisher.close()
    found = _consumers(nats_server.url, "node-test")[_EVENTS]
    assert found.config.opt_start_seq == 101
    assert found.delivered.consumer_seq == 20
    assert found.num_ack_pending == 0
    assert _counters(rt)[f"seq.{_EVENTS}"] == 120
    assert platform.blob_calls == 140  # the 20 lost ones fetched and stored again


class _Flaky(_Platform):
    """The platform unreachable for the first ``failures`` blob fetches."""

    def __init__(self, client: TestClient, blobs: dict[str, bytes], failures: int) -> None:
        super().__init__(client, blobs)
        self.failures = failures

    def blob(self, cid: str) -> bytes:
        if self.failures:
            self.failures -= 1
            raise FetchFailed("the platform is unreachable")
        return super().blob(cid)


def test_a_failed_batch_comes_again_and_is_acknowledged_once_stored(
    runtime: Runtime, client: TestClient, nats_server: NatsServer
) -> None:
    rt = runtime
    blobs = _record(rt, 90)
    platform = _Flaky(client, blobs, failures=2)
    mirror = Mirror(rt.sessions, platform, rt.clock)
    mirror.start()
    publisher = Publisher(rt, nats_server.url, batch=50)
    try:
        _publish(publisher)
        follower = Follower(mirror, nats_server.url, "node-flaky", batch=32, idle=0.05)
        follower.start()
        _wait_for(rt, 90, _log_size(client))
        follower.stop()
    finally:
        publisher.close()
    assert platform.failures == 0
    found: Any = _consumers(nats_server.url, "node-flaky")[_EVENTS]
    assert found.num_redelivered == 0
    assert found.num_ack_pending == 0
    assert found.ack_floor.stream_seq == 90  # every message acknowledged, once stored
    assert found.delivered.consumer_seq > 90  # the failed batches delivered again
    counters = _counters(rt)
    assert not [name for name in counters if name.startswith("dropped.")]
    assert platform.blob_calls == 90  # stored once each: a failed batch stores nothing
