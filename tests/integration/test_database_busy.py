"""A database that is only busy is a 503 with ``Retry-After``, never a 500 (issue 13 item 1):
a pool with no free connection, SQLite's write lock held past the busy timeout, a
PostgreSQL lock that cannot be had — real driver errors, on both databases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.conftest import GENEROUS_RATE_LIMITS, make_settings, migrate

from credit_commons.core.db import DatabaseBusy, busy_error, make_engine
from credit_commons.gateway.app import create_app
from credit_commons.runtime import Runtime


def test_a_request_that_finds_no_free_connection_is_503(tmp_path: Path, backend_url: str) -> None:
    settings = make_settings(
        tmp_path,
        database_url=backend_url,
        db_pool_size=1,
        db_pool_timeout=0.2,
        rate_limits=GENEROUS_RATE_LIMITS,
    )
    rt = Runtime.build(settings)
    migrate(rt.engine)
    try:
        with TestClient(create_app(settings, runtime=rt)) as client:
            # Every connection the pool may open (1 + 1 in overflow) is taken elsewhere.
            held = [rt.engine.connect(), rt.engine.connect()]
            try:
                response = client.post("/v1/identities", json={"profile": {"name": "Busy"}})
            finally:
                for connection in held:
                    connection.close()
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["retry-after"] == "1"
            assert response.json()["code"] == "service.database_busy"
            metrics = client.get("/metrics").text
            assert 'commons_db_busy_total{reason="pool_timeout"} 1.0' in metrics
            # With the connections back, the same request is served.
            again = client.post("/v1/identities", json={"profile": {"name": "Busy"}})
            assert again.status_code == 201, again.text
    finally:
        rt.close()


def test_sqlite_locked_past_the_busy_timeout_is_busy(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    try:
        with pytest.raises(sa.exc.OperationalError) as raised, engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO t VALUES (1)"))
        busy = busy_error(raised.value)
        assert isinstance(busy, DatabaseBusy)
        assert busy.reason == "locked"
        assert busy.status == 503
        assert busy.retry_after == 1
    finally:
        engine.dispose()
        holder.close()


@pytest.mark.postgres
def test_postgres_lock_not_available_is_busy(postgres_schema_url: str) -> None:
    engine = make_engine(postgres_schema_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        with engine.connect() as holder, holder.begin():
            holder.execute(sa.text("LOCK TABLE t IN ACCESS EXCLUSIVE MODE"))
            with engine.begin() as waiter:
                waiter.execute(sa.text("SET LOCAL lock_timeout = '50ms'"))
                with pytest.raises(sa.exc.OperationalError) as raised:
                    waiter.execute(sa.text("SELECT * FROM t"))
        busy = busy_error(raised.value)
        assert isinstance(busy, DatabaseBusy)
        assert busy.reason == "lock_not_available"
    finally:
        engine.dispose()


def test_other_database_errors_are_not_busy(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(sa.exc.OperationalError) as raised, engine.connect() as connection:
            connection.execute(sa.text("SELECT * FROM missing"))
        assert busy_error(raised.value) is None
        assert busy_error(ValueError("not a database error")) is None
    finally:
        engine.dispose()
