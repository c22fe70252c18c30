"""Strangers cannot grow the transparency log (issue 12 item 7), on SQLite and PostgreSQL.

Denials that name no existing consent or borrower — no token, a forged or expired one, an
unknown consent id, an unknown client at the token endpoint — are counted: a Prometheus
counter and a bounded table of counts per (hour, operation, reason), which operators read
(``GET /v1/admin/access-denials``, ``commons consent denials``) and retention prunes.  They
add no leaf to the log.  Denials that name an existing consent are events, as before.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.integration.consent_world import BASE, World

from credit_commons.cli import main
from credit_commons.consent.models import AccessDenialCountRow
from credit_commons.core.db import transaction
from credit_commons.demo import client_assertion
from credit_commons.events import EventRow
from credit_commons.identity.auth import subject_of
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.ledger import service as log_service
from credit_commons.ledger.worker import LogWorker
from credit_commons.privacy.retention import run_retention

UNKNOWN = "cns_" + "0" * 26


def _log_size(world: World) -> int:
    # Sequence whatever is pending, then the number of leaves.
    LogWorker(world.rt, steps=[]).run_once()
    with transaction(world.rt.read_sessions) as session:
        return log_service.log_state(session)[0]


def _event_count(world: World) -> int:
    with transaction(world.rt.read_sessions) as session:
        return int(session.scalar(select(func.count()).select_from(EventRow)) or 0)


def _counts(world: World) -> dict[tuple[str, str], int]:
    listed = world.http.get("/v1/admin/access-denials", headers=world.admin)
    assert listed.status_code == 200, listed.text
    totals: dict[tuple[str, str], int] = {}
    for entry in listed.json():
        key = (entry["operation"], entry["reason"])
        totals[key] = totals.get(key, 0) + entry["count"]
    return totals


def _metric(world: World) -> dict[tuple[str, str], float]:
    text = world.http.get("/metrics").text
    found: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("commons_access_denials_unattributed_total{"):
            labels, value = line.rsplit(" ", 1)
            pairs = dict(p.split("=", 1) for p in labels[labels.index("{") + 1 : -1].split(","))
            found[(pairs["operation"].strip('"'), pairs["reason"].strip('"'))] = float(value)
    return found


def _stranger_calls(world: World, rounds: int) -> dict[tuple[str, str], int]:
    """``rounds`` of every kind of denial that names nothing; returns what each adds."""
    good = world.token()["Authorization"]
    forged = {"Authorization": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")}
    stranger = PrivateKey.generate(KeyType.ED25519)
    expected: dict[tuple[str, str], int] = {}

    def expect(operation: str, reason: str, response: Any, status: int) -> None:
        assert response.status_code == status, response.text
        expected[(operation, reason)] = expected.get((operation, reason), 0) + 1

    for _ in range(rounds):
        expect(
            "credentials.read",
            "auth.token_missing",
            world.http.get("/v1/lender/credentials", params={"consent_id": UNKNOWN}),
            401,
        )
        expect("credentials.read", "auth.token_invalid", world.fetch(UNKNOWN, forged), 401)
        # An authenticated lender naming a consent that does not exist names nobody either.
        expect("credentials.read", "consent.not_found", world.fetch(UNKNOWN), 403)
        expect("lender.whoami", "auth.token_missing", world.http.get("/v1/lender/client"), 401)
        expect(
            "consent.read",
            "auth.token_invalid",
            world.http.get(f"/v1/consents/{UNKNOWN}", headers=forged),
            401,
        )
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_assertion(
                "lnd_" + "q" * 22, stranger, f"{BASE}/oauth/token", world.now()
            ),
        }
        refused = world.http.post("/oauth/token", data=form)
        expect("oauth.token", "auth.client_unknown", refused, 401)
    return expected


def test_strangers_add_no_leaf_and_are_counted(world: World) -> None:
    rounds = 4
    world.token()  # the first token makes the platform's OAuth key (an event of its own)
    size, events = _log_size(world), _event_count(world)
    counts, metrics = _counts(world), _metric(world)
    expected = _stranger_calls(world, rounds)
    assert sum(expected.values()) == 6 * rounds
    assert _event_count(world) == events
    assert _log_size(world) == size
    after, after_metrics = _counts(world), _metric(world)
    for key, added in expected.items():
        assert after.get(key, 0) - counts.get(key, 0) == added, key
        assert after_metrics.get(key, 0) - metrics.get(key, 0) == added, key
    assert sum(after.values()) - sum(counts.values()) == sum(expected.values())


def test_expired_tokens_are_counted_not_logged(world: World) -> None:
    expiring = world.token()
    world.clock.advance(timedelta(minutes=10))
    events, counts = _event_count(world), _counts(world)
    assert world.fetch(UNKNOWN, expiring).status_code == 401
    assert _event_count(world) == events
    key = ("credentials.read", "auth.token_expired")
    assert _counts(world).get(key, 0) == counts.get(key, 0) + 1


def test_denials_naming_an_existing_consent_are_still_events(world: World) -> None:
    borrower = subject_of(world.rt, world.borrower)
    live = world.consent()
    # Another lender's request for this consent, and a token without the scope: both are
    # attempts on this borrower's data, logged with the borrower as subject.
    for headers, reason in (
        (world.token(world.other), "consent.not_found"),
        (world.token(scope="consent:read"), "auth.scope_missing"),
    ):
        events = _event_count(world)
        response = world.fetch(live, headers=headers)
        assert response.status_code == 403
        assert _event_count(world) == events + 1
        event = world.last_denial()
        assert event.subject == borrower
        assert json.loads(event.details)["reason"] == reason
    narrow = world.token(scope="credentials:read")
    read = world.http.get(f"/v1/consents/{live}", headers=narrow)
    assert read.status_code == 403
    assert world.last_denial().subject == borrower
    assert json.loads(world.last_denial().details) == {
        "operation": "consent.read",
        "reason": "auth.scope_missing",
    }


def test_counts_are_bounded_and_pruned(world: World) -> None:
    # One row per (hour, operation, reason), however many denials: the table is bounded by
    # construction, and retention drops hours past their window.
    for _ in range(5):
        world.http.get("/v1/lender/client")
    with transaction(world.rt.read_sessions) as session:
        rows = session.scalars(select(AccessDenialCountRow)).all()
        assert [(r.operation, r.reason, r.count) for r in rows] == [
            ("lender.whoami", "auth.token_missing", 5)
        ]
    days = world.rt.settings.retention_denial_counts_days
    world.clock.advance(timedelta(days=days, hours=2))
    with transaction(world.rt.sessions) as session:
        assert run_retention(session, world.rt)["access_denial_counts"] == 1
    with transaction(world.rt.read_sessions) as session:
        assert session.scalars(select(AccessDenialCountRow)).all() == []


def test_only_operators_read_the_counts(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    world.http.get("/v1/lender/client")
    refused = world.http.get("/v1/admin/access-denials", headers=world.as_borrower)
    assert refused.status_code == 404
    assert world.http.get("/v1/admin/access-denials").status_code == 401
    monkeypatch.setenv("COMMONS_DATA_DIR", str(world.rt.settings.data_dir))
    monkeypatch.setenv("COMMONS_DATABASE_URL", world.rt.settings.resolved_database_url)
    assert main(["consent", "denials", "--hours", "24", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["operation"], e["reason"], e["count"]) for e in listed] == [
        ("lender.whoami", "auth.token_missing", 1)
    ]
