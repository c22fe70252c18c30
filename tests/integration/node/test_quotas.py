"""Flood: a peer's stream over its quota is throttled without stopping the others (issue 20
item 4), against a real NATS JetStream, on SQLite and PostgreSQL.  The quotas' clock is the
test's and stands still, so the events stream gets exactly its burst and no more while the
checkpoints stream keeps arriving; bounded by counts of polls, never by wall time."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from tests.integration.federation.nats_server import NatsServer
from tests.integration.node.test_follow import _log_size, _publish, _stored, _wait_for
from tests.integration.node.test_mirror import _counters, _Platform, _record

from credit_commons.federation import Publisher
from credit_commons.node import Follower, Mirror, Quotas
from credit_commons.runtime import Runtime

MAX_POLLS = 600  # x 50 ms
BURST = 40  # events admitted while the clock stands still


class _Clock:
    """Stands still until released; then each reading is 10 s after the last."""

    def __init__(self) -> None:
        self.now, self.running = 0.0, False

    def __call__(self) -> float:
        if self.running:
            self.now += 10.0
        return self.now


def _poll(check: object, what: str) -> None:
    assert callable(check)
    for _ in range(MAX_POLLS):
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(what)


def test_flood_a_stream_over_its_quota_is_throttled_without_stopping_others(
    runtime: Runtime, client: TestClient, nats_server: NatsServer
) -> None:
    rt = runtime
    clock = _Clock()
    quotas = Quotas(
        stream_messages=BURST / 2,
        burst=2.0,
        peer_messages=1e6,
        backoff_base=0.02,
        backoff_max=0.1,
        clock=clock,
    )
    blobs = _record(rt, 150)  # the flood: 150 events, one checkpoint
    platform = _Platform(client, blobs)
    mirror = Mirror(rt.sessions, platform, rt.clock)
    mirror.start()
    publisher = Publisher(rt, nats_server.url, batch=50)
    follower = Follower(mirror, nats_server.url, "node-q", batch=32, idle=0.05, quotas=quotas)
    try:
        _publish(publisher)
        follower.start()
        # The checkpoint arrives; the events stop at the burst, the rest held back.
        _poll(lambda: _stored(rt)[1] == _log_size(client), "no checkpoint arrived")
        _poll(lambda: _counters(rt).get("throttled.COMMONS_EVENTS", 0) >= 2, "never throttled")
        assert _stored(rt)[0] == BURST

        # More events and checkpoints while the flood is held: the checkpoints keep coming.
        for _ in range(3):
            blobs.update(_record(rt, 5))
            _publish(publisher)
            _poll(lambda: _stored(rt)[1] == _log_size(client), "a checkpoint was held")
            assert _stored(rt)[0] == BURST

        # Time passes for the quotas: the held events arrive, nothing lost or doubled.
        clock.running = True
        _wait_for(rt, 165, _log_size(client))
    finally:
        follower.stop()
        publisher.close()
    counters = _counters(rt)
    assert not [name for name in counters if name.startswith("dropped.")]
    assert counters["throttled.COMMONS_EVENTS"] >= 2
    assert "throttled.COMMONS_CHECKPOINTS" not in counters
