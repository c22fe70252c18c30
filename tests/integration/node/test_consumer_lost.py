"""A consumer deleted under a running follower (node/follower.py, node/pull.py) against a
real NATS JetStream, on SQLite and PostgreSQL: the follower logs it, binds again, makes the
consumer again from its cursor, and mirrors what is published afterwards, nothing doubled.
Bounded by counts of polls, never by wall time."""

from __future__ import annotations

import asyncio
import logging

import nats
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.integration.federation.nats_server import NatsServer
from tests.integration.node.test_follow import _log_size, _publish, _wait_for
from tests.integration.node.test_mirror import _counters, _Platform, _record

from credit_commons.core.db import transaction
from credit_commons.federation import STREAMS, Publisher
from credit_commons.node import Follower, Mirror
from credit_commons.node.models import NodeMessageRow
from credit_commons.runtime import Runtime

_NODE = "node-lost"


def _delete_consumers(url: str) -> None:
    async def delete() -> None:
        nc = await nats.connect(servers=[url], allow_reconnect=False)
        try:
            js = nc.jetstream()
            for spec in STREAMS:
                await js.delete_consumer(spec.name, f"{_NODE}-{spec.name}")
        finally:
            await nc.close()

    asyncio.run(delete())


def test_a_consumer_deleted_under_the_follower_is_made_again_from_the_cursor(
    runtime: Runtime,
    client: TestClient,
    nats_server: NatsServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rt = runtime
    blobs = _record(rt, 50)
    platform = _Platform(client, blobs)
    mirror = Mirror(rt.sessions, platform, rt.clock)
    mirror.start()
    publisher = Publisher(rt, nats_server.url, batch=50)
    follower = Follower(mirror, nats_server.url, _NODE, batch=32, idle=0.05)
    caplog.set_level(logging.WARNING, logger="credit_commons.node")
    try:
        _publish(publisher)
        follower.start()
        _wait_for(rt, 50, _log_size(client))
        _delete_consumers(nats_server.url)
        blobs.update(_record(rt, 30))
        _publish(publisher)
        _wait_for(rt, 80, _log_size(client))
    finally:
        follower.stop()
        publisher.close()
    lost = [r for r in caplog.records if r.getMessage().startswith("node: a stream's consumer")]
    assert lost, "the lost consumer was not logged"
    counters = _counters(rt)
    assert not [name for name in counters if name.startswith("dropped.")]
    assert counters["seq.COMMONS_EVENTS"] == 80
    assert platform.blob_calls == 80  # each blob fetched once: nothing processed twice
    with transaction(rt.read_sessions) as session:
        positions = session.scalars(
            sa.select(NodeMessageRow.position).where(NodeMessageRow.stream == "COMMONS_EVENTS")
        ).all()
    assert len(positions) == 80  # each event stored once
