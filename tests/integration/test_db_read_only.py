"""core/db_read_only.py on SQLite and PostgreSQL: an engine whose connections refuse writes
at the database — including a connection that has run a ``snapshot()`` and gone back to the
pool (SQLAlchemy resets a PostgreSQL connection's ``postgresql_readonly`` on return, and
psycopg then begins READ WRITE transactions over the session's default)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from credit_commons.core.db import (
    dispose_engine,
    make_engine,
    make_sessionmaker,
    snapshot,
    transaction,
)
from credit_commons.core.db_read_only import is_write_refusal, refuse_writes
from credit_commons.core.facts import PlatformFactRow
from credit_commons.core.settings import Settings
from credit_commons.runtime import Runtime


def _facts(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(PlatformFactRow)) or 0


@pytest.mark.parametrize("sessions", ["write", "read"])
def test_no_connection_writes_not_even_after_a_snapshot(
    runtime: Runtime, settings: Settings, sessions: str
) -> None:
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        before = _facts(engine)
        refuse_writes(engine)
        factory = make_sessionmaker(engine, read_only=sessions == "read")
        with snapshot(engine) as connection:  # a read as `log audit` makes it
            connection.execute(sa.select(sa.func.count()).select_from(PlatformFactRow))
        for attempt in range(3):  # the one pooled connection, again and again
            row = {"key": f"probe.{attempt}", "value": "x", "recorded_at": runtime.clock.now()}
            with pytest.raises(SQLAlchemyError) as refused, transaction(factory) as session:
                session.execute(sa.insert(PlatformFactRow).values(**row))
            assert is_write_refusal(refused.value), refused.value
        with transaction(factory) as session:  # reads still work
            assert session.scalar(sa.select(sa.func.count()).select_from(PlatformFactRow)) == before
    finally:
        dispose_engine(engine)
    check = make_engine(settings.resolved_database_url)
    try:
        assert _facts(check) == before
    finally:
        dispose_engine(check)
