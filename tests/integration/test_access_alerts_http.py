"""Anomalous-access alerts end to end through the HTTP API (issue 21 item 4): a lender
hammering a revoked consent and a night-time retrieval each raise one ``alert.raised``,
counted on ``/metrics`` with the domain figures, and a rate-limited call is counted too.
On both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import GENEROUS_RATE_LIMITS, make_settings, migrate
from tests.integration.consent_world import BASE, World

from credit_commons.core.clock import FixedClock
from credit_commons.events import EventRow
from credit_commons.gateway.app import create_app
from credit_commons.jobs import monitor_step
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime

NOON = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


@pytest.fixture
def world(tmp_path: Path, backend_url: str) -> Iterator[World]:
    clock = FixedClock(NOON)
    settings = make_settings(
        tmp_path,
        database_url=backend_url,
        public_url=BASE,
        rate_limits={**GENEROUS_RATE_LIMITS, "log.ip": "3/minute"},
        alerts={"denial_burst": 4},
    )
    rt = Runtime.build(settings, clock=clock)
    migrate(rt.engine)
    with TestClient(create_app(settings, runtime=rt), base_url=BASE) as http:
        yield World(rt, http, clock)


def _work(rt: Runtime) -> None:
    # What the worker does: sequence, then the monitor reads what was sequenced.
    LogWorker(rt, steps=[monitor_step(interval=0.0)], probes=[]).run_once()


def _alerts(world: World) -> list[str]:
    with world.rt.sessions() as session:
        rows = session.scalars(select(EventRow).where(EventRow.type == "alert.raised")).all()
        return sorted(f"{r.details}|{r.subject}" for r in rows)


def _metrics(world: World) -> dict[str, float]:
    found = {}
    for line in world.http.get("/metrics").text.splitlines():
        if line.startswith("commons_") and not line.startswith("commons_http"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_a_denial_burst_and_a_night_retrieval_each_raise_one_alert(world: World) -> None:
    consent = world.consent()  # a one-time consent, used at noon
    assert world.fetch(consent).status_code == 200
    _work(world.rt)
    assert _alerts(world) == []

    world.decide(consent, "revoke")
    for _ in range(9):  # refused nine times: one burst of four and more, in one window
        assert world.fetch(consent).status_code == 403
    _work(world.rt)
    _work(world.rt)  # a second pass reads nothing new and raises nothing
    (burst,) = _alerts(world)
    assert '"kind":"denial_burst"' in burst

    night = world.consent()
    world.clock.advance(timedelta(hours=14))  # 02:00 UTC: outside the usual 06-22
    assert world.fetch(night).status_code == 200
    _work(world.rt)
    alerts = _alerts(world)
    assert len(alerts) == 2
    assert sum('"kind":"off_hours"' in a for a in alerts) == 1

    metrics = _metrics(world)
    assert metrics["commons_metrics_database_up"] == 1.0
    assert metrics['commons_alerts_total{kind="denial_burst"}'] == 1.0
    assert metrics['commons_alerts_total{kind="off_hours"}'] == 1.0
    allowed = 'commons_access_total{operation="credentials.read",outcome="allowed",reason=""}'
    assert metrics[allowed] == 2.0
    denied = (
        'commons_access_total{operation="credentials.read",outcome="denied",'
        'reason="consent.revoked"}'
    )
    assert metrics[denied] == 9.0
    assert metrics['commons_events_total{type="credential.issued"}'] == 1.0
    assert metrics['commons_events_total{type="consent.granted"}'] == 2.0
    assert metrics["commons_log_size"] >= metrics["commons_log_checkpoint_size"] > 0
    # The last pass's own alert.raised waits for the next sequencing.
    assert metrics['commons_queue_depth{queue="log_outbox"}'] == 1.0
    assert metrics['commons_queue_depth{queue="webhooks"}'] == 0.0
    assert metrics["commons_monitor_lag"] == 0.0


def test_rate_limited_calls_are_counted(world: World) -> None:
    answers = [world.http.get("/v1/log/checkpoint").status_code for _ in range(5)]
    assert answers.count(429) == 2
    assert _metrics(world)['commons_rate_limited_total{group="log",key="ip"}'] == 2.0
