"""``GET /v1/node`` shows the node's reading of its platform's log state (issue 21 item 2;
docs/federation.md, "Service token and lag"), on SQLite and PostgreSQL: before a reading,
``checked_at`` is null; a platform that cannot be reached leaves the problem code in
``error``.  A reading from a real platform with a registered key is checked end to end in
``tests/e2e/test_service_keys_http.py``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from tests.integration.node.test_mirror import _Platform, _record
from tests.ports import free_port

from credit_commons.core.clock import FixedClock
from credit_commons.gateway.node_app import create_node_app
from credit_commons.keys import ServiceIdentity
from credit_commons.node import Mirror, Platform, PlatformLag
from credit_commons.runtime import Runtime


def test_the_node_shows_its_lag_reading(
    runtime: Runtime, client: TestClient, tmp_path: Path
) -> None:
    clock = FixedClock(datetime.now(UTC))
    mirror = Mirror(runtime.sessions, _Platform(client, _record(runtime, 1)), clock)
    mirror.start()
    identity = ServiceIdentity.create(
        tmp_path / "service-key.json", service="node", name="node-lag01", clock=clock
    )
    unreachable = Platform(f"http://127.0.0.1:{free_port()}", timeout=2)
    try:
        lag = PlatformLag(unreachable, identity, lambda: 0, clock, ttl=60)
        node = TestClient(create_node_app(mirror, platform_lag=lag))
        assert node.get("/v1/node").json()["platform_lag"] == {"checked_at": None}
        lag.check()
        shown = node.get("/v1/node").json()["platform_lag"]
        assert shown["checked_at"] is None
        assert shown["error"] == "net.fetch_failed"
        assert shown["failed_at"] == clock.now().isoformat()
        plain = TestClient(create_node_app(mirror))
        assert plain.get("/v1/node").json()["platform_lag"] is None
    finally:
        unreachable.close()
