"""The access monitor (issue 21 item 4): each anomaly scenario raises exactly one
``alert.raised`` (an event, a row, a signed webhook to the operator and a count), a replay
of normal traffic raises none, and neither a restart nor a pass that fails half-way raises
anything twice.  On both databases.

Traffic is written with the real event models (``access.allowed``, ``access.denied``,
``consent.requested``) at chosen times, sequenced by the log worker, then read by the
monitor as the worker step reads it."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.conftest import make_settings, migrate

from credit_commons.consent import artefacts, monitor, webhooks
from credit_commons.consent.access import AccessAllowed, AccessDenied, lender_actor
from credit_commons.consent.models import AccessAlertRow, WebhookDeliveryRow
from credit_commons.consent.requests import ConsentRequested
from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.net import OutboundFetcher
from credit_commons.events import EventRow, EventSpec, record_events
from credit_commons.formats.jws import verify_compact
from credit_commons.jobs import monitor_step
from credit_commons.keys.algorithms import ACCEPTED_ALGS
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime

HOOK = "https://alerts.example/hook"
# Small thresholds keep the scenarios to a few hundred events; the rules are the same.
ALERTS = {
    "denial_burst": 5,
    "denial_window": 600,
    "lender_factor": 5.0,
    "lender_floor": 20,
    "lender_cold_start": 40,
    "lender_history_hours": 24,
    "baseline_hours": 168,
}
DAY0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday, 00:00 UTC


def _build(tmp_path: Path, url: str, **alerts: object) -> Runtime:
    settings = make_settings(
        tmp_path, database_url=url, alerts={**ALERTS, **alerts}, alert_webhook_url=HOOK
    )
    return Runtime.build(settings, clock=FixedClock(DAY0 + timedelta(days=30)))


@pytest.fixture
def rt(tmp_path: Path, backend_url: str) -> Iterator[Runtime]:
    runtime = _build(tmp_path, backend_url)
    migrate(runtime.engine)
    try:
        yield runtime
    finally:
        runtime.close()


@dataclass(frozen=True)
class Consent:
    lender: str  # the lender's pseudonym
    borrower: str
    object: str


class Traffic:
    """Events at chosen times, recorded as the platform records them."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.specs: list[EventSpec] = []

    def consent(self, lender: str, borrower: str, purpose: str, at: datetime) -> Consent:
        rt = self.rt
        n = len(self.specs)
        consent = Consent(
            lender_actor(rt, lender),
            rt.pseudonymizer.pseudonym("identity", borrower),
            rt.objects.digest("consent", f"cns_{lender}_{borrower}_{n}"),
        )
        details = ConsentRequested(template="BASIC", purpose=purpose)
        self.specs.append(EventSpec(details, consent.lender, at, consent.borrower, consent.object))
        return consent

    def retrieve(self, consent: Consent, at: datetime, n: int = 1) -> None:
        details = AccessAllowed(operation="credentials.read")
        for i in range(n):
            at_i = at + timedelta(seconds=i)
            self.specs.append(
                EventSpec(details, consent.lender, at_i, consent.borrower, consent.object)
            )

    def deny(
        self, consent: Consent, at: datetime, n: int = 1, reason: str = "consent.revoked"
    ) -> None:
        details = AccessDenied(operation="credentials.read", reason=reason)
        for i in range(n):
            at_i = at + timedelta(seconds=i)
            self.specs.append(
                EventSpec(details, consent.lender, at_i, consent.borrower, consent.object)
            )

    def commit(self) -> None:
        # In time order, as they would happen; then sequenced into the log.
        with transaction(self.rt.sessions) as session:
            record_events(session, sorted(self.specs, key=lambda s: s.at))
        self.specs.clear()
        worker = LogWorker(self.rt, steps=[], probes=[])
        while worker.run_once().sequenced:
            pass


def _normal(traffic: Traffic, days: int, seed: int = 7) -> list[Consent]:
    # Five lenders, each with its borrowers, retrieving 2-6 times an hour in working hours
    # (08:00-20:00 UTC) and now and then refused (a revoked consent: once or twice a day).
    rng = random.Random(seed)
    consents = [
        traffic.consent(
            f"lnd_{lender}", f"b{lender}{b}", rng.choice(["105", "loan.underwriting"]), DAY0
        )
        for lender in range(5)
        for b in range(4)
    ]
    for day in range(days):
        for hour in range(8, 20):
            start = DAY0 + timedelta(days=day, hours=hour)
            for lender in range(5):
                for _ in range(rng.randint(2, 6)):
                    consent = consents[lender * 4 + rng.randrange(4)]
                    traffic.retrieve(consent, start + timedelta(minutes=rng.randrange(60)))
        for _ in range(rng.randint(1, 2)):
            consent = rng.choice(consents)
            traffic.deny(consent, DAY0 + timedelta(days=day, hours=rng.randint(8, 19)))
    return consents


def _alerts(rt: Runtime) -> list[tuple[str, str]]:
    with rt.sessions() as session:
        rows = session.scalars(select(EventRow).where(EventRow.type == "alert.raised")).all()
        return sorted((json.loads(r.details)["kind"], r.subject or "") for r in rows)


def _run(rt: Runtime) -> None:
    while monitor.monitor_pass(rt, limit=500).leaves:
        pass


def test_normal_traffic_raises_no_alert(rt: Runtime) -> None:
    traffic = Traffic(rt)
    _normal(traffic, days=4)
    traffic.commit()
    _run(rt)
    assert _alerts(rt) == []
    with rt.sessions() as session:
        totals = {(t, o, r): n for t, o, r, n in monitor.event_totals(session)}
        assert monitor.monitor_lag(session) == 0
    assert totals[("consent.requested", "", "")] == 20
    assert totals[("access.allowed", "credentials.read", "")] > 500
    assert sum(n for (t, _, _), n in totals.items() if t == "access.denied") >= 4


def test_a_burst_of_denials_for_one_borrower_raises_one_alert(rt: Runtime) -> None:
    traffic = Traffic(rt)
    consents = _normal(traffic, days=2)
    target = consents[3]
    # Twelve refusals within one ten-minute window, and four in the next (under the burst).
    traffic.deny(target, DAY0 + timedelta(days=2, hours=10, minutes=1), n=12)
    traffic.deny(target, DAY0 + timedelta(days=2, hours=10, minutes=11), n=4)
    traffic.commit()
    _run(rt)
    assert _alerts(rt) == [("denial_burst", target.borrower)]


def test_a_lender_far_above_its_baseline_raises_one_alert(rt: Runtime) -> None:
    traffic = Traffic(rt)
    consents = _normal(traffic, days=3)
    # Lender 2, with three days of 2-6 an hour (a mean of about 2 an hour over whole days),
    # retrieves 60 times in one hour: past max(20, 5 x mean).
    traffic.retrieve(consents[8], DAY0 + timedelta(days=3, hours=11), n=60)
    traffic.commit()
    _run(rt)
    assert _alerts(rt) == [("lender_baseline", consents[8].lender)]


def test_a_new_lender_is_held_to_the_cold_start_ceiling(rt: Runtime) -> None:
    traffic = Traffic(rt)
    _normal(traffic, days=1)
    newcomer = traffic.consent("lnd_new", "bnew", "105", DAY0 + timedelta(days=1, hours=9))
    # 39 in its first hour (under the ceiling of 40), then 45 in its second.
    traffic.retrieve(newcomer, DAY0 + timedelta(days=1, hours=9), n=39)
    traffic.retrieve(newcomer, DAY0 + timedelta(days=1, hours=10), n=45)
    traffic.commit()
    _run(rt)
    assert _alerts(rt) == [("lender_baseline", newcomer.lender)]


def test_retrievals_at_unusual_hours_for_the_purpose_raise_one_alert(rt: Runtime) -> None:
    traffic = Traffic(rt)
    _normal(traffic, days=1)
    night = DAY0 + timedelta(days=1, hours=2)
    underwriting = traffic.consent("lnd_9", "b91", "loan.underwriting", DAY0)
    monitoring = traffic.consent("lnd_8", "b81", "loan.monitoring", DAY0)
    traffic.retrieve(underwriting, night)  # 02:00 UTC: outside 06-22
    traffic.retrieve(underwriting, night + timedelta(minutes=50), n=3)  # the same night
    traffic.retrieve(monitoring, night, n=3)  # loan monitoring: any hour
    traffic.commit()
    _run(rt)
    assert _alerts(rt) == [("off_hours", underwriting.lender)]
    with rt.sessions() as session:
        (event,) = session.scalars(select(EventRow).where(EventRow.type == "alert.raised"))
    assert json.loads(event.details) == {
        "kind": "off_hours",
        "window": "2026-11-03T00:00:00Z",
        "count": 1,
        "threshold": 0,
        "purpose": "loan.underwriting",
        "hour": 2,
    }


def test_usual_hours_are_local_to_the_configured_zone(tmp_path: Path, backend_url: str) -> None:
    rt = _build(tmp_path, backend_url, timezone="Asia/Kolkata")
    migrate(rt.engine)
    try:
        traffic = Traffic(rt)
        consent = traffic.consent("lnd_1", "b1", "105", DAY0)
        traffic.retrieve(consent, DAY0 + timedelta(hours=2))  # 07:30 in Kolkata: usual
        traffic.retrieve(consent, DAY0 + timedelta(hours=19))  # 00:30 the next day: not
        traffic.commit()
        _run(rt)
        assert _alerts(rt) == [("off_hours", consent.lender)]
    finally:
        rt.close()


def _scenarios(traffic: Traffic) -> list[tuple[str, str]]:
    consents = _normal(traffic, days=3)
    traffic.deny(consents[1], DAY0 + timedelta(days=3, hours=9), n=6)
    traffic.retrieve(consents[12], DAY0 + timedelta(days=3, hours=12), n=60)
    night = traffic.consent("lnd_7", "b71", "105", DAY0)
    traffic.retrieve(night, DAY0 + timedelta(days=3, hours=23))
    return sorted(
        [
            ("denial_burst", consents[1].borrower),
            ("lender_baseline", consents[12].lender),
            ("off_hours", night.lender),
        ]
    )


def test_alerts_are_signed_webhooks_to_the_operator(rt: Runtime) -> None:
    traffic = Traffic(rt)
    expected = _scenarios(traffic)
    traffic.commit()
    _run(rt)
    assert _alerts(rt) == expected
    with rt.sessions() as session:
        rows = session.scalars(select(WebhookDeliveryRow)).all()
    with transaction(rt.sessions) as session:
        key = artefacts.consent_key_versions(session, rt)[0].public_key
    assert [r.lender_client_id for r in rows] == [webhooks.OPERATOR] * 3
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    fetcher = OutboundFetcher(
        transport=httpx.MockTransport(answer), resolver=lambda _host: ["93.184.216.34"]
    )
    assert webhooks.deliver_due(rt, fetcher=fetcher)["delivered"] == 3
    assert {str(r.url) for r in seen} == {HOOK}
    kinds = []
    for request in seen:
        claims = verify_compact(
            request.content.decode(), key, typ=webhooks.ALERT_TYP, algs=ACCEPTED_ALGS
        )
        assert claims["aud"] == webhooks.OPERATOR
        kinds.append((claims["kind"], claims["subject"]))
    assert sorted(kinds) == expected


def test_a_restart_raises_nothing_twice(rt: Runtime, tmp_path: Path, backend_url: str) -> None:
    traffic = Traffic(rt)
    expected = _scenarios(traffic)
    traffic.commit()
    monitor.monitor_pass(rt, limit=700)  # part of the log, then "the process stops"
    url = rt.settings.database_url
    rt.close()
    again = _build(tmp_path, url or backend_url)
    try:
        step = monitor_step(interval=0.0, batch=300)
        while step(again, 0):
            pass
        _run(again)
        assert _alerts(again) == expected
        with again.sessions() as session:
            assert len(session.scalars(select(AccessAlertRow)).all()) == 3
    finally:
        again.close()


def test_a_pass_that_fails_half_way_raises_nothing_twice(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic = Traffic(rt)
    expected = _scenarios(traffic)
    traffic.commit()
    real = webhooks.enqueue_alert
    calls = []

    def failing(*args: object, **kwargs: object) -> bool:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(webhooks, "enqueue_alert", failing)
    with pytest.raises(RuntimeError):
        monitor.monitor_pass(rt, limit=100_000)
    assert _alerts(rt) == []  # the whole pass rolled back
    _run(rt)
    assert _alerts(rt) == expected
    with rt.sessions() as session:
        assert len(session.scalars(select(WebhookDeliveryRow)).all()) == 3
