"""The node's follower against a real NATS JetStream, on SQLite and PostgreSQL (issue 20
item 2): the platform's publisher publishes, the follower's durable consumers deliver
into the mirror; a follower stopped and started again with the same consumers, and a NATS
server SIGKILLed and restarted mid-stream, lose and double nothing.  Bounded by counts of
polls, never by wall time."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from tests.integration.federation.nats_server import NatsServer
from tests.integration.node.test_mirror import _counters, _Platform, _record

from credit_commons.core.db import transaction
from credit_commons.federation import Publisher
from credit_commons.node import Follower, Mirror
from credit_commons.node import store as node_store
from credit_commons.runtime import Runtime

MAX_POLLS = 600  # x 50 ms


def _publish(publisher: Publisher) -> None:
    for _ in range(MAX_POLLS):
        if not publisher.run_pass() and publisher.state.value == "up":
            return
        time.sleep(0.05)
    raise AssertionError("the publisher never caught up")


def _stored(rt: Runtime) -> tuple[int, int]:
    with transaction(rt.read_sessions) as session:
        counters = node_store.counters(session)
        latest = node_store.latest_checkpoint(session)
    return counters.get("accepted.COMMONS_EVENTS", 0), 0 if latest is None else int(latest.size)


def _wait_for(rt: Runtime, events: int, size: int) -> None:
    """Poll until the node holds ``events`` events and a tree of ``size``; fail once
    ``MAX_POLLS`` polls in a row saw no progress (a node still catching up on a loaded
    machine is waited for; one that stopped is not)."""
    seen, still = _stored(rt), 0
    while seen != (events, size):
        if still >= MAX_POLLS:
            raise AssertionError(f"the node has {seen}, not {(events, size)}, and stopped")
        time.sleep(0.05)
        now = _stored(rt)
        seen, still = now, (still + 1 if now == seen else 0)


def _log_size(client: TestClient) -> int:
    return int(client.get("/v1/log/checkpoint").text.split("\n")[1])


def test_follows_restarts_and_survives_a_nats_restart(
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

        # Stopped: more events meanwhile; the same consumers resume where they were.
        blobs.update(_record(rt, 80))
        _publish(publisher)
        follower = Follower(mirror, nats_server.url, "node-test", batch=32, idle=0.05)
        follower.start()
        _wait_for(rt, 200, _log_size(client))

        # NATS SIGKILLed and restarted while the node follows: nothing acknowledged is lost.
        nats_server.kill()
        blobs.update(_record(rt, 60))
        nats_server.start()
        _publish(publisher)
        _wait_for(rt, 260, _log_size(client))
        follower.stop()
    finally:
        publisher.close()
    counters = _counters(rt)
    assert not [name for name in counters if name.startswith("dropped.")]
    assert counters["tree.size"] == _log_size(client)
    assert platform.blob_calls == 260  # each blob fetched once: nothing processed twice
