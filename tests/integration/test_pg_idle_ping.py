"""PostgreSQL connections are pinged before use only after sitting idle (core/db.py,
``_ping_when_idle``), not on every checkout as ``pool_pre_ping`` did (issue 13 item 7: two
of a retrieval's twelve statements).  A connection the server cut while it sat idle is
replaced without the unit of work noticing; one cut within the window fails one unit of
work as 503 ``database_busy``, and the next gets a new connection."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from credit_commons.core.db import busy_error, dispose_engine, make_engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def admin(postgres_schema_url: str) -> Iterator[Engine]:
    engine = sa.create_engine(postgres_schema_url)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(admin: Engine, pid: int) -> None:
    with admin.begin() as connection:
        assert connection.execute(sa.text(f"SELECT pg_terminate_backend({pid})")).scalar_one()
    # The backend is gone once the server no longer lists it.
    for _ in range(200):
        with admin.connect() as connection:
            query = sa.text(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}")
            if connection.execute(query).scalar_one() == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"backend {pid} still listed after pg_terminate_backend")


def test_a_connection_cut_while_idle_is_replaced_unnoticed(
    postgres_schema_url: str, admin: Engine
) -> None:
    engine = make_engine(postgres_schema_url, pool_size=1, ping_idle_after=0.0)
    try:
        cut = _backend_pid(engine)
        _terminate(admin, cut)
        # Idle past the window (0 s): the checkout pings, finds it cut, takes a new one.
        assert _backend_pid(engine) != cut
    finally:
        dispose_engine(engine)


def test_within_the_window_no_ping_is_spent_and_a_cut_fails_one_unit_of_work(
    postgres_schema_url: str, admin: Engine
) -> None:
    engine = make_engine(postgres_schema_url, pool_size=1, ping_idle_after=3600.0)
    try:
        cut = _backend_pid(engine)
        _terminate(admin, cut)
        # Used a moment ago: no ping, so the cut shows on the unit of work itself...
        with pytest.raises(sa.exc.OperationalError) as raised:
            _backend_pid(engine)
        busy = busy_error(raised.value)
        assert busy is not None
        assert busy.reason == "connection_lost"
        # ...which is answered 503 (retry), and the next one gets a new connection.
        assert _backend_pid(engine) != cut
    finally:
        dispose_engine(engine)


def test_a_connection_lost_at_commit_is_not_called_busy(
    postgres_schema_url: str, admin: Engine
) -> None:
    # The write may have been committed: no "nothing was written, retry" answer for it.
    engine = make_engine(postgres_schema_url, pool_size=1)
    try:
        connection = engine.connect()
        transaction = connection.begin()
        pid = int(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        _terminate(admin, pid)
        with pytest.raises(sa.exc.DBAPIError) as raised:
            transaction.commit()
        assert raised.value.connection_invalidated
        assert raised.value.statement is None
        assert busy_error(raised.value) is None
        connection.close()
    finally:
        dispose_engine(engine)
