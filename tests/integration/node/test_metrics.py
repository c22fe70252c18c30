"""The node's ``/metrics`` on SQLite and PostgreSQL: drops counted by reason, stored
messages by stream, the mirrored tree and checkpoint, and a snapshot kept ``ttl`` seconds
(issue 20; docs/federation.md "Metrics").  The figures after a real follow through NATS
are checked in ``test_cutoff.py``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from tests.integration.node.test_cutoff import _samples
from tests.integration.node.test_mirror import _messages, _Platform, _record

from credit_commons.core.clock import FixedClock
from credit_commons.gateway.node_app import create_node_app
from credit_commons.node import DROP_REASONS, Mirror
from credit_commons.runtime import Runtime


def test_metrics_count_stored_and_dropped_messages(runtime: Runtime, client: TestClient) -> None:
    rt = runtime
    blobs = _record(rt, 4)
    clock = FixedClock(datetime.now(UTC))
    mirror = Mirror(rt.sessions, _Platform(client, blobs), clock)
    mirror.start()
    node = TestClient(create_node_app(mirror, metrics_ttl=0))
    before = _samples(node.get("/metrics").text)
    assert before[("commons_node_database_up", ())] == 1.0
    assert before[("commons_node_tree_size", ())] == 0.0
    assert before[("commons_node_checkpoint_size", ())] == 0.0
    assert before[("commons_node_checkpoint_age_seconds", ())] == 0.0
    assert ("commons_node_lag_messages", (("stream", "COMMONS_EVENTS"),)) not in before

    messages = _messages(rt)
    for m in messages:
        assert mirror.accept(m.body, m.subject, m.stream) == "stored"
    good = next(m for m in messages if m.stream == "COMMONS_EVENTS")
    assert mirror.accept(b"x" * (64 * 1024 + 1), good.subject, good.stream) == "dropped"
    # A checkpoint covers this event now, so its content is proven by the mirrored leaf and
    # a damaged signature alone would not be what drops it (docs/federation.md, "Verifying a
    # batch against its checkpoint"); a body that is no compact JWS is a signature drop.
    assert mirror.accept(good.body + b".AAAA", good.subject, good.stream) == "dropped"
    assert mirror.accept(good.body, "events.other", good.stream) == "dropped"
    clock.advance(timedelta(seconds=90))

    after = _samples(node.get("/metrics").text)
    events = sum(1 for m in messages if m.stream == "COMMONS_EVENTS")
    checkpoints = [m for m in messages if m.stream == "COMMONS_CHECKPOINTS"]
    stored = ("commons_node_messages_stored_total", (("stream", "COMMONS_EVENTS"),))
    assert after[stored] == events == 4
    stored = ("commons_node_messages_stored_total", (("stream", "COMMONS_CHECKPOINTS"),))
    assert after[stored] == len(checkpoints)
    dropped = {
        reason: after[("commons_node_messages_dropped_total", (("reason", reason),))]
        for reason in DROP_REASONS
    }
    hit = ("oversize", "signature", "subject")
    assert dropped == {r: 1.0 if r in hit else 0.0 for r in dropped}
    size = checkpoints[-1].position
    assert after[("commons_node_tree_size", ())] == size
    assert after[("commons_node_checkpoint_size", ())] == size
    assert after[("commons_node_checkpoint_age_seconds", ())] == 90.0

    # A kept snapshot: within its ttl, a scrape does not read again.
    cached = TestClient(create_node_app(mirror, metrics_ttl=3600))
    first = _samples(cached.get("/metrics").text)
    assert mirror.accept(b"x" * (64 * 1024 + 1), good.subject, good.stream) == "dropped"
    assert _samples(cached.get("/metrics").text) == first
    fresh = _samples(node.get("/metrics").text)
    assert fresh[("commons_node_messages_dropped_total", (("reason", "oversize"),))] == 2.0
