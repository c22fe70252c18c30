"""The verifier's decision write, on SQLite and PostgreSQL, by each of its paths — PostgreSQL's
one statement in autocommit (``transactions.record_decision_at_once``) and the unit of work
(``transactions.record_decision`` and ``events.write_event_rows``): the event and its log
entry written are exactly those ``events.event_rows`` made for the decision, the log
sequences them and audits; and a connection lost under the one statement is reported as an
outcome unknown (naming the transaction and the event), never as "unrecorded"."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event, select
from tests.integration.verifier_world import VpWorld, vp

from credit_commons.core.clock import utc
from credit_commons.core.db import transaction
from credit_commons.events import EventRow, EventRows, LogOutboxRow
from credit_commons.ledger.audit import audit_log
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.models import LogEntryRow
from credit_commons.ledger.worker import LogWorker
from credit_commons.verifier import responses
from credit_commons.verifier import service as verifier_service
from credit_commons.verifier import transactions as txn
from credit_commons.verifier.models import VpTransactionRow

__all__ = ["vp"]

DENIED = {"error": "not_allowed"}


def _made_and_used(monkeypatch: pytest.MonkeyPatch) -> tuple[list[EventRows], list[bool]]:
    # The verification.decided rows the endpoint made, and what each one-statement write
    # returned.
    made: list[EventRows] = []
    used: list[bool] = []
    make, write = responses._event_rows, txn.record_decision_at_once

    def made_rows(*args: Any, **kwargs: Any) -> EventRows:
        rows = make(*args, **kwargs)
        made.append(rows)
        return rows

    def written(*args: Any, **kwargs: Any) -> bool:
        used.append(write(*args, **kwargs))
        return used[-1]

    monkeypatch.setattr(responses, "_event_rows", made_rows)
    monkeypatch.setattr(txn, "record_decision_at_once", written)
    return made, used


def _decided_and_audited(vp: VpWorld, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    # One allowed response: its event and log entry are the ones made for it, byte for
    # byte; then the log sequences the entry as made and the whole log audits.
    made, used = _made_and_used(monkeypatch)
    holder = vp.holder()
    created = vp.request()
    wallet = vp.wallet_request(created)
    answer = vp.respond(created, wallet, {"crc": [vp.presentation(holder, wallet)]})
    assert answer.status_code == 200, answer.text
    [rows] = made
    [values], [entry] = rows.events, rows.entries
    assert values["type"] == "verification.decided"
    assert entry["event_id"] == values["id"]
    with transaction(vp.rt.read_sessions) as session:
        stored = session.get(EventRow, values["id"])
        queued = session.scalars(
            select(LogOutboxRow).where(LogOutboxRow.event_id == values["id"])
        ).all()
    assert stored is not None
    assert {name: getattr(stored, name) for name in values if name != "at"} == {
        name: value for name, value in values.items() if name != "at"
    }
    assert utc(stored.at) == values["at"]
    assert [(row.event_id, bytes(row.entry)) for row in queued] == [
        (entry["event_id"], entry["entry"])
    ]
    LogWorker(vp.rt, steps=[]).run_once(force_checkpoint=True)
    with transaction(vp.rt.read_sessions) as session:
        leaf = session.scalars(select(LogEntryRow).where(LogEntryRow.event_id == values["id"]))
        assert [bytes(row.entry) for row in leaf] == [entry["entry"]]
        assert session.scalar(select(sa.func.count()).select_from(LogOutboxRow)) == 0
    report = audit_log(vp.rt.engine, log_identity(vp.rt).vkey)
    assert report.size >= 1
    return used


@pytest.mark.parametrize("backend_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_the_one_statement_writes_the_event_and_entry_made_for_the_decision(
    vp: VpWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _decided_and_audited(vp, monkeypatch) == [True]


def test_the_unit_of_work_writes_the_event_and_entry_made_for_the_decision(
    vp: VpWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL too: the path a response with ZK proofs to mark takes.
    monkeypatch.setattr(responses, "_at_once", lambda outcome: False)
    assert _decided_and_audited(vp, monkeypatch) == []


@pytest.mark.parametrize("backend_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_a_connection_lost_under_the_one_statement_is_an_unknown_outcome(
    vp: VpWorld, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The one statement is its own COMMIT: lost under it, the decision may have been
    # written.  The wallet still gets the uniform denial; the operator's log says the outcome
    # is unknown and names the transaction and the event, not "unrecorded".
    made, used = _made_and_used(monkeypatch)
    admin = sa.create_engine(vp.rt.engine.url)
    plan = responses._plan

    def cut(dbapi_connection: Any, *_: Any) -> None:
        # The write's connection, cut by the server just before the statement is sent.
        pid = dbapi_connection.info.backend_pid
        with admin.begin() as connection:
            connection.execute(sa.text(f"SELECT pg_terminate_backend({pid})"))
        listed = sa.text(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}")
        for _ in range(200):
            with admin.connect() as connection:
                if connection.execute(listed).scalar_one() == 0:
                    return
            time.sleep(0.05)

    def planned(*args: Any, **kwargs: Any) -> Any:
        # After the read unit of work, right before the write checks out its connection.
        found = plan(*args, **kwargs)
        event.listen(vp.rt.engine, "checkout", cut, once=True)
        return found

    monkeypatch.setattr(responses, "_plan", planned)
    try:
        holder = vp.holder()
        created = vp.request()
        wallet = vp.wallet_request(created)
        form = {"crc": [vp.presentation(holder, wallet)]}
        with caplog.at_level(logging.INFO):
            answer = vp.respond(created, wallet, form)
    finally:
        admin.dispose()
    assert (answer.status_code, answer.json()) == (400, DENIED)
    [rows] = made
    event_id = rows.recorded[0].id
    messages = [record.getMessage() for record in caplog.records]
    assert f"verification.outcome_unknown transaction={created['id']} event={event_id}" in (
        messages
    )
    assert not [m for m in messages if "unrecorded" in m]
    assert [m for m in messages if m.startswith("verification.decided")] == [
        f"verification.decided transaction={created['id']} decision=allow reason=- recorded=unknown"
    ]
    assert used == []  # the statement raised
    # Cut before the statement was sent: nothing was written, the challenge is unused, and
    # the wallet's next post decides the transaction.
    with transaction(vp.rt.read_sessions) as session:
        assert session.get(EventRow, event_id) is None
        row = session.get(VpTransactionRow, created["id"])
        assert row is not None
        assert row.consumed_at is None
    assert vp.respond(created, wallet, form).status_code == 200
    assert used == [True]


@pytest.mark.parametrize("backend_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_the_unknown_outcome_names_the_transaction_and_the_event(
    vp: VpWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The service's own error, under the route: a 503 problem of its own naming both.
    made, _ = _made_and_used(monkeypatch)

    def lost(*args: Any, **kwargs: Any) -> bool:
        raise sa.exc.OperationalError("SELECT", {}, Exception("gone"), connection_invalidated=True)

    monkeypatch.setattr(txn, "record_decision_at_once", lost)
    holder = vp.holder()
    created = vp.request()
    wallet = vp.wallet_request(created)
    form = {
        "vp_token": json.dumps({"crc": [vp.presentation(holder, wallet)]}),
        "state": str(wallet.state),
    }
    with pytest.raises(verifier_service.DecisionOutcomeUnknown) as unknown:
        verifier_service.accept_response(vp.rt, created["id"], form)
    [rows] = made
    assert (unknown.value.transaction_id, unknown.value.event_id) == (
        created["id"],
        rows.recorded[0].id,
    )
    problem = unknown.value.problem()
    assert (problem["status"], problem["code"]) == (503, "verification.decision_outcome_unknown")
    assert (problem["transaction_id"], problem["event_id"]) == (created["id"], rows.recorded[0].id)
