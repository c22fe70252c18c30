"""The tests' copy of a migrated database (``tests.conftest.migrate``, which the ``runtime``
fixture and the worlds use instead of running every migration per test) is what
``upgrade`` makes of an empty database, on SQLite and PostgreSQL: the same tables, columns,
keys, indexes and constraints, the same rows, the head revision — and a database that is
not empty still goes through ``upgrade``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine
from tests.conftest import fresh_postgres_schema, migrate

from credit_commons.core.db import dispose_engine, make_engine
from credit_commons.core.migrate import current_revision, head_revision, upgrade


def _aware(value: datetime | str) -> datetime:
    # SQLite hands back the stored text; PostgreSQL a datetime.
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _plain(value: Any) -> str:
    # What the inspector reported, as text: a partial index's ``WHERE`` clause by its SQL,
    # not by the object's address.
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_plain(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(_plain, value)) + "]"
    if isinstance(value, sa.ClauseElement):
        return f"<{value}>"
    return repr(value)


def _schema(engine: Engine) -> dict[str, Any]:
    # Everything the inspector reports of each table, with its rows.  Constraint lists are
    # sorted: SQLite's batch migrations recreate tables with their constraints in an order
    # that differs between two runs of ``upgrade`` itself.
    found: dict[str, Any] = {}
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        for table in sorted(inspector.get_table_names()):
            rows = connection.execute(sa.text(f'SELECT * FROM "{table}"')).fetchall()
            found[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                    for c in inspector.get_columns(table)
                ],
                "primary_key": _plain(inspector.get_pk_constraint(table)),
                "foreign_keys": sorted(map(_plain, inspector.get_foreign_keys(table))),
                "indexes": sorted(map(_plain, inspector.get_indexes(table))),
                "unique": sorted(map(_plain, inspector.get_unique_constraints(table))),
                "checks": sorted(map(_plain, inspector.get_check_constraints(table))),
                "rows": sorted(map(repr, rows)),
            }
    return found


@pytest.fixture
def second_url(backend_url: str, tmp_path: Path) -> Iterator[str]:
    """Another empty database on the backend of ``backend_url``."""
    if backend_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'upgraded.db'}"
    else:
        with fresh_postgres_schema() as url:
            yield url


def test_the_copy_is_what_upgrade_makes(backend_url: str, second_url: str) -> None:
    copied, upgraded = make_engine(backend_url), make_engine(second_url)
    try:
        assert upgrade(upgraded) == head_revision()
        before = datetime.now(UTC)
        migrate(copied)
        after = datetime.now(UTC)
        assert current_revision(copied) == head_revision()
        expected, found = _schema(upgraded), _schema(copied)
        assert len(expected) > 30  # every domain's tables, not an empty shell
        assert expected["log_state"]["rows"]  # a row a migration writes
        # The first erasure epoch opens when the schema is made: for the copy, at the copy.
        with copied.connect() as connection:
            opened = connection.execute(sa.text("SELECT opened_at FROM erasure_epochs")).all()
        assert len(opened) == 1
        assert before <= _aware(opened[0][0]) <= after
        for schema in (expected, found):
            assert len(schema["erasure_epochs"].pop("rows")) == 1
        assert found == expected
        # Pooled connections opened before the copy see it, and it is writable.
        with copied.begin() as connection:
            connection.execute(sa.text("INSERT INTO alembic_version VALUES ('extra')"))
        with copied.connect() as connection:
            versions = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert sorted(v for (v,) in versions) == sorted([head_revision() or "", "extra"])
    finally:
        dispose_engine(copied)
        dispose_engine(upgraded)


def test_a_database_with_tables_goes_through_upgrade(backend_url: str) -> None:
    engine = make_engine(backend_url)
    try:
        assert upgrade(engine, "0001") == "0001"
        migrate(engine)
        assert current_revision(engine) == head_revision()
        assert len(sa.inspect(engine).get_table_names()) > 30
    finally:
        dispose_engine(engine)


def test_the_bundle_queue_migration_goes_up_and_down(backend_url: str) -> None:
    # 0041 sits between 0040 and 0042: its columns come and go with it, and head follows.
    def columns(engine: Engine) -> set[str]:
        return {c["name"] for c in sa.inspect(engine).get_columns("reputation_scores")}

    engine = make_engine(backend_url)
    try:
        assert upgrade(engine, "0040") == "0040"
        assert "bundle_requested_at" not in columns(engine)
        assert upgrade(engine, "0041") == "0041"
        assert {"bundle_requested_at", "bundle_refused"} <= columns(engine)
        indexes = sa.inspect(engine).get_indexes("reputation_scores")
        assert ["bundle_requested_at"] in [i["column_names"] for i in indexes]
        config = Config()
        config.set_main_option("script_location", "credit_commons:migrations")
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0040")
        assert current_revision(engine) == "0040"
        assert "bundle_requested_at" not in columns(engine)
        assert upgrade(engine) == head_revision()
        assert "federation_cursors" in sa.inspect(engine).get_table_names()
        assert {"bundle_requested_at", "bundle_refused"} <= columns(engine)
    finally:
        dispose_engine(engine)
