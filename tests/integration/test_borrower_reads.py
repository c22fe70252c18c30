"""The borrower's reads behind the console's overview and "who saw what", on SQLite and
PostgreSQL: the overview counts the waiting requests without loading them, the history
makes one keyed pseudonym per lender (not one per consent) and reads a subject's events
newest first through ``(subject, id)`` (migration 0056), page after page."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from tests.integration.consent_world import World
from tests.integration.web.test_borrower_pages import HTML, LOOPBACK, borrower_token, sign_in

from credit_commons.consent import history
from credit_commons.consent import requests as consent_requests
from credit_commons.consent.model import ConsentStatus
from credit_commons.core.db import transaction
from credit_commons.identity.auth import Principal


def _statements(world: World, needle: str) -> tuple[list[tuple[str, Any]], Any]:
    seen: list[tuple[str, Any]] = []

    def listen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if needle in statement:
            seen.append((statement, parameters))

    event.listen(world.rt.engine, "before_cursor_execute", listen)
    return seen, listen


def test_waiting_requests_are_counted_up_to_the_limit(world: World) -> None:
    for _ in range(3):
        world.consent(approve=False)
    world.consent()  # granted: not waiting
    admin = Principal("admin:t", "admin")
    seen, listen = _statements(world, "FROM consents")
    try:
        with transaction(world.rt.read_sessions) as session:
            counts = [
                consent_requests.count_for_borrower(
                    session, world.rt, admin, world.borrower, ConsentStatus.PENDING, limit=limit
                )
                for limit in (100, 3, 2)
            ]
    finally:
        event.remove(world.rt.engine, "before_cursor_execute", listen)
    assert counts == [3, 3, 2]
    # Counted, not loaded: no consent's columns are read.
    assert seen
    assert all("count(" in s.lower() for s, _ in seen), seen
    assert all("consents.details" not in s for s, _ in seen), seen


def test_the_overview_counts_without_loading_consents(world: World) -> None:
    client = TestClient(world.http.app, base_url=LOOPBACK, raise_server_exceptions=False)
    client.headers.update(HTML)
    for _ in range(2):
        world.consent(approve=False)
    sign_in(client, borrower_token(world))
    seen, listen = _statements(world, "FROM consents")
    try:
        page = client.get("/borrower")
    finally:
        event.remove(world.rt.engine, "before_cursor_execute", listen)
    assert page.status_code == 200, page.text
    assert "Requests waiting: 2" in page.text
    assert seen
    assert all("count(" in s.lower() for s, _ in seen), seen


def test_one_pseudonym_per_lender(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    consents = [world.consent() for _ in range(3)]
    for consent_id in consents:
        assert world.fetch(consent_id).status_code == 200
    made: list[str] = []
    real = history.lender_actor

    def counted(rt: Any, client_id: str) -> str:
        made.append(client_id)
        return real(rt, client_id)

    monkeypatch.setattr(history, "lender_actor", counted)
    with transaction(world.rt.read_sessions) as session:
        entries = history.access_history(
            session, world.rt, Principal("admin:t", "admin"), world.borrower
        )
    assert made == [world.lender]
    assert [e.consent_id for e in entries] == consents[::-1]
    assert {(e.actor_kind, e.lender, e.lender_name) for e in entries} == {
        ("lender", world.lender, "Lender One")
    }


def test_history_pages_read_the_subjects_events_newest_first(world: World) -> None:
    consents = [world.consent() for _ in range(5)]
    for consent_id in consents:
        assert world.fetch(consent_id).status_code == 200
    assert world.fetch(consents[0]).status_code == 403  # one-time: refused the second time
    admin = Principal("admin:t", "admin")
    seen, listen = _statements(world, "FROM events")
    try:
        with transaction(world.rt.read_sessions) as session:
            first = history.access_history(session, world.rt, admin, world.borrower, limit=4)
            rest = history.access_history(
                session, world.rt, admin, world.borrower, limit=4, before=first[-1].event_id
            )
    finally:
        event.remove(world.rt.engine, "before_cursor_execute", listen)
    outcomes = [e.outcome for e in first + rest]
    assert outcomes == ["denied"] + ["allowed"] * 5
    assert [e.consent_id for e in first + rest] == [consents[0], *consents[::-1]]
    ids = [e.event_id for e in first + rest]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 6
    if world.rt.engine.dialect.name != "sqlite":
        return
    reads = [(s, p) for s, p in seen if "events.subject = " in s]
    assert len(reads) == 2, seen
    for statement, parameters in reads:
        with world.rt.engine.connect() as connection:
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            plan = " | ".join(str(row[-1]) for row in rows.all())
        assert "USING INDEX ix_events_subject_id" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
