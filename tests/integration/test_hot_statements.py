"""HotStatement (core/db.py): precompiled writes on the DBAPI cursor, on both databases,
held to what SQLAlchemy's own Core statements store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from credit_commons.core.db import HotStatement, transaction
from credit_commons.runtime import Runtime

_META = sa.MetaData()
_THINGS = sa.Table(
    "hot_things",
    _META,
    sa.Column("id", sa.String(20), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("blob", sa.LargeBinary),
    sa.Column("n", sa.Integer),
)
_DEFAULTED = sa.Table(
    "hot_defaulted",
    _META,
    sa.Column("id", sa.String(20), primary_key=True),
    sa.Column("n", sa.Integer, default=0, onupdate=1),
)
_INSERT = HotStatement(sa.insert(_THINGS), ("id", "at", "blob", "n"))
_UPDATE = HotStatement(
    sa.update(_THINGS)
    .where(_THINGS.c.id == sa.bindparam("key"))
    .values(n=sa.bindparam("n"), at=sa.bindparam("at")),
    ("key", "n", "at"),
)
AT = datetime(2026, 11, 22, 10, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def tables(runtime: Runtime) -> Runtime:
    _META.create_all(runtime.engine)
    return runtime


def test_inserts_and_updates_store_what_core_stores(tables: Runtime) -> None:
    rt = tables
    with transaction(rt.sessions) as session:
        assert _INSERT.executemany(
            session,
            [{"id": f"hot-{i}", "at": AT, "blob": bytes([i]) * 3, "n": i} for i in range(3)],
        ) in (3, -1)
        # The same row through SQLAlchemy's Core insert, for comparison.
        session.execute(sa.insert(_THINGS), {"id": "core", "at": AT, "blob": b"\x00", "n": 0})
    with transaction(rt.sessions) as session:
        assert _UPDATE.execute(session, key="hot-1", n=10, at=AT) == 1
        assert _UPDATE.execute(session, key="absent", n=10, at=AT) == 0
    with rt.engine.connect() as connection:
        rows = {r.id: r for r in connection.execute(sa.select(_THINGS))}
        # Stored forms are identical: the datetimes went through the same bind processor.
        raw = {
            r[0]: r[1]
            for r in connection.exec_driver_sql("SELECT id, CAST(at AS TEXT) FROM hot_things")
        }
    assert raw["hot-0"] == raw["core"]
    assert rows["hot-1"].n == 10
    assert rows["hot-2"].blob == b"\x02\x02\x02"
    assert rows["hot-0"].at.replace(tzinfo=UTC) == AT


def test_driver_errors_arrive_as_sqlalchemy_errors_and_roll_back(tables: Runtime) -> None:
    rt = tables
    with transaction(rt.sessions) as session:
        _INSERT.execute(session, id="dup", at=AT, blob=b"", n=1)
    with pytest.raises(DbIntegrityError):
        _insert_twice(rt)
    with rt.engine.connect() as connection:
        ids = {r[0] for r in connection.execute(sa.select(_THINGS.c.id))}
    assert ids == {"dup"}  # the failed unit of work left nothing behind


def _insert_twice(rt: Runtime) -> None:
    with transaction(rt.sessions) as session:
        _INSERT.execute(session, id="other", at=AT, blob=b"", n=2)
        _INSERT.execute(session, id="dup", at=AT, blob=b"", n=3)


def test_statements_needing_python_defaults_or_other_parameters_are_refused(
    tables: Runtime,
) -> None:
    rt = tables
    needs_default = HotStatement(sa.insert(_DEFAULTED), ("id",))
    needs_onupdate = HotStatement(
        sa.update(_DEFAULTED).where(_DEFAULTED.c.id == sa.bindparam("key")), ("key",)
    )
    wrong_names = HotStatement(sa.insert(_THINGS), ("id", "at", "blob", "n", "extra"))
    with transaction(rt.sessions) as session:
        for statement in (needs_default, needs_onupdate):
            with pytest.raises(ValueError, match="Python-side defaults"):
                statement.execute(session, id="x", key="x")
        with pytest.raises(ValueError, match="parameters"):
            wrong_names.execute(session, id="x", at=AT, blob=b"", n=1, extra=1)
        assert _INSERT.executemany(session, []) == 0
