"""A node cut off from NATS for a while converges after reconnection, on SQLite and
PostgreSQL (issue 20's "a node cut off (its NATS connection dropped for a while)
converges after reconnection"): an in-test TCP proxy sits between the follower and a real
``nats-server -js``; cut, the platform publishes more events and checkpoints; restored, the
node catches up with nothing lost or doubled.  Then the node's ``/metrics`` says so.
Bounded by counts of polls, never by wall time."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.federation.nats_server import NatsServer
from tests.integration.node.tcp_proxy import TcpProxy
from tests.integration.node.test_follow import _log_size, _publish, _stored
from tests.integration.node.test_mirror import _counters, _Platform, _record

from credit_commons.federation import STREAMS, Publisher
from credit_commons.gateway.node_app import create_node_app
from credit_commons.node import DROP_REASONS, Follower, Mirror
from credit_commons.runtime import Runtime

MAX_POLLS = 2400  # x 50 ms: the follower backs off up to 10 s between attempts


def _wait_for(rt: Runtime, events: int, size: int) -> None:
    for _ in range(MAX_POLLS):
        if _stored(rt) == (events, size):
            return
        time.sleep(0.05)
    raise AssertionError(f"the node has {_stored(rt)}, not {(events, size)}")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_node_cut_off_converges_after_reconnection(
    runtime: Runtime, client: TestClient, nats_server: NatsServer
) -> None:
    rt = runtime
    blobs = _record(rt, 50)
    platform = _Platform(client, blobs)
    mirror = Mirror(rt.sessions, platform, rt.clock)
    mirror.start()
    publisher = Publisher(rt, nats_server.url, batch=50)  # the platform reaches NATS directly
    proxy = TcpProxy(nats_server.port)
    proxy.restore()
    follower = Follower(mirror, proxy.url, "node-cut", batch=32, idle=0.05)
    try:
        _publish(publisher)
        follower.start()
        _wait_for(rt, 50, _log_size(client))
        assert proxy.connections == 1

        # Cut: the node's connection is closed and new ones refused, while the platform
        # records and publishes 70 more events and two more checkpoints.
        proxy.cut()
        cut_at = _log_size(client)
        for _ in range(2):
            blobs.update(_record(rt, 35))
            _publish(publisher)
        assert _log_size(client) > cut_at
        assert _stored(rt) == (50, cut_at)  # nothing can have reached the node

        # Restored: the follower reconnects and converges, each message once.
        proxy.restore()
        _wait_for(rt, 120, _log_size(client))
        assert proxy.connections >= 2
    finally:
        follower.stop()
        publisher.close()
        proxy.cut()
    counters = _counters(rt)
    assert not [name for name in counters if name.startswith("dropped.")]
    assert counters["tree.size"] == _log_size(client)
    assert counters["accepted.COMMONS_EVENTS"] == 120
    assert platform.blob_calls == 120  # each blob fetched once: nothing processed twice

    # The node's /metrics say the same.
    node = TestClient(create_node_app(mirror, lag=lambda: dict(follower.pending), metrics_ttl=0))
    answer = node.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = _samples(answer.text)
    assert samples[("commons_node_database_up", ())] == 1.0
    stored = {spec.name: counters.get(f"accepted.{spec.name}", 0) for spec in STREAMS}
    for stream, value in stored.items():
        key = ("commons_node_messages_stored_total", (("stream", stream),))
        assert samples[key] == value, stream
        key = ("commons_node_messages_throttled_total", (("stream", stream),))
        assert samples[key] == 0.0
    assert stored["COMMONS_CHECKPOINTS"] >= 3
    for reason in DROP_REASONS:
        assert samples[("commons_node_messages_dropped_total", (("reason", reason),))] == 0.0
    assert samples[("commons_node_tree_size", ())] == _log_size(client)
    assert samples[("commons_node_checkpoint_size", ())] == _log_size(client)
    assert samples[("commons_node_checkpoint_age_seconds", ())] >= 0.0
    assert samples[("commons_node_forks", ())] == 0.0
    assert samples[("commons_node_lag_messages", (("stream", "COMMONS_EVENTS"),))] == 0.0
    assert samples[("commons_node_lag_messages", (("stream", "COMMONS_CHECKPOINTS"),))] == 0.0
