"""The write of an allowed retrieval — the use counted and ``access.allowed`` recorded — on
SQLite and PostgreSQL: what it sends the database, and that it is all or nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from tests.conftest import make_settings, migrate
from tests.integration.test_consent_service import (
    LENDER,
    _borrower,
    _decide,
    _request,
    _retrieve,
)

from credit_commons.consent import check, retrieval
from credit_commons.consent.models import ConsentRow
from credit_commons.core import db
from credit_commons.core.db import transaction
from credit_commons.events import EventRow, LogOutboxRow, spine
from credit_commons.runtime import Runtime

_PERIODIC: dict[str, Any] = {
    "template": "loan_monitoring",
    "purpose": "104",
    "fetch_type": "PERIODIC",
    "frequency": {"unit": "MONTH", "value": 2},
}


def _granted(runtime: Runtime) -> list[str]:
    # A one-time and a periodic consent, approved.
    token = _borrower(runtime)
    ids = [_request(runtime, token), _request(runtime, token, **_PERIODIC)]
    for consent_id in ids:
        _decide(runtime, token, consent_id, "approve")
    return ids


def _in_transaction(connection: Any) -> bool:
    # Whether the driver connection runs the statement inside an explicit transaction.
    driver = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        return not driver.autocommit
    return bool(driver.in_transaction)


def test_an_allowed_use_is_one_statement_on_postgresql(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After the read unit of work, PostgreSQL is sent one statement outside any transaction
    # (the UPDATE, the event and its log entry as data-modifying CTEs); SQLite, which has
    # no such statement, the UPDATE and the two INSERTs in one transaction.
    ids = _granted(runtime)
    sent: list[tuple[str, bool]] = []
    reading = [True]
    real_read, real_run = retrieval._read, db._run

    def read(*args: Any, **kwargs: Any) -> Any:
        reading[0] = True
        found = real_read(*args, **kwargs)
        reading[0] = False
        return found

    def run(connection: Any, sql: str, values: list[Any]) -> Any:
        if not reading[0]:
            sent.append((sql.split(maxsplit=1)[0], _in_transaction(connection)))
        return real_run(connection, sql, values)

    def executed(connection: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if not reading[0]:
            sent.append((sql.split(maxsplit=1)[0], _in_transaction(connection)))

    monkeypatch.setattr(retrieval, "_read", read)
    monkeypatch.setattr(db, "_run", run)
    event.listen(runtime.engine, "before_cursor_execute", executed)
    try:
        for consent_id in ids:
            sent.clear()
            shared = _retrieve(runtime, consent_id)
            if runtime.engine.dialect.name == "postgresql":
                assert sent == [("WITH", False)]
            else:
                assert sent == [("UPDATE", True), ("INSERT", True), ("INSERT", True)]
            with transaction(runtime.read_sessions) as session:
                row = session.get(ConsentRow, consent_id)
                recorded = session.get(EventRow, shared.access_event_id)
                entries = session.scalar(
                    select(func.count())
                    .select_from(LogOutboxRow)
                    .where(LogOutboxRow.event_id == shared.access_event_id)
                )
            assert row is not None
            assert (row.uses, row.window_uses) == (1, 1)
            assert recorded is not None
            assert recorded.type == "access.allowed"
            assert entries == 1
    finally:
        event.remove(runtime.engine, "before_cursor_execute", executed)


def test_a_use_whose_event_cannot_be_written_is_not_counted(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The event's id collides with a recorded event's: its INSERT fails, and the UPDATE
    # that counted the use goes with it, on both databases.
    ids = _granted(runtime)
    with transaction(runtime.read_sessions) as session:
        taken = session.scalars(select(EventRow.id).limit(1)).one()
        outbox = session.scalar(select(func.count()).select_from(LogOutboxRow))
    monkeypatch.setattr(spine, "new_id", lambda _prefix: taken)
    for consent_id in ids:
        with pytest.raises(IntegrityError):
            _retrieve(runtime, consent_id, LENDER)
    with transaction(runtime.read_sessions) as session:
        rows = [session.get(ConsentRow, c) for c in ids]
        assert [(r.uses, r.window, r.window_uses) for r in rows if r] == [(0, -1, 0)] * 2
        assert session.scalar(select(func.count()).select_from(LogOutboxRow)) == outbox


@pytest.mark.postgres
def test_a_connection_lost_under_the_use_is_not_called_busy(
    postgres_schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one statement is its own COMMIT: lost under it, the use may have been written, so
    # the answer must not be 503 "busy, nothing was written, retry" (core.db.busy_error) but
    # its own 503 naming the access event the use may have recorded.
    runtime = Runtime.build(make_settings(tmp_path, database_url=postgres_schema_url))
    migrate(runtime.engine)
    admin = sa.create_engine(postgres_schema_url)
    try:
        consent_id = _granted(runtime)[0]
        real_read = retrieval._read

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

        def read(*args: Any, **kwargs: Any) -> Any:
            found = real_read(*args, **kwargs)
            event.listen(runtime.engine, "checkout", cut, once=True)
            return found

        monkeypatch.setattr(retrieval, "_read", read)
        with pytest.raises(check.UseOutcomeUnknown) as lost:
            _retrieve(runtime, consent_id)
        cause = lost.value.__cause__
        assert isinstance(cause, sa.exc.DBAPIError)
        assert cause.connection_invalidated
        problem = lost.value.problem()
        assert (problem["status"], problem["code"]) == (503, "consent.use_outcome_unknown")
        assert str(problem["event_id"]).startswith("evt_")
        assert "nothing was written" not in str(problem["detail"])
    finally:
        admin.dispose()
        runtime.close()
