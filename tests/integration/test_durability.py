"""Durability of acknowledged commits (issue 13 item 6, core/durability.py): SQLite syncs
every commit (synchronous=FULL) on the connections the log and consents commit through, and
PostgreSQL with synchronous_commit=off is warned about in development and refused in
production."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import make_settings

from credit_commons.core.db import transaction
from credit_commons.core.durability import durability_violations
from credit_commons.core.errors import ConfigurationError
from credit_commons.core.migrate import upgrade
from credit_commons.gateway.app import startup_checks
from credit_commons.runtime import Runtime


def _level(session: sa.orm.Session) -> str:
    if session.get_bind().dialect.name == "sqlite":
        return str(session.execute(sa.text("PRAGMA synchronous")).scalar_one())
    return str(session.execute(sa.text("SHOW synchronous_commit")).scalar_one())


def test_commits_of_the_log_and_consents_are_synced(runtime: Runtime) -> None:
    # The write sessions (consent decisions, the sequencer's log commits) and the read
    # sessions both run on connections that sync each commit: SQLite FULL is 2 (NORMAL,
    # which a power loss can roll back to the last checkpoint, is 1).
    expected = "2" if runtime.engine.dialect.name == "sqlite" else "on"
    with transaction(runtime.sessions) as session:
        assert _level(session) == expected
    with transaction(runtime.read_sessions) as session:
        assert _level(session) == expected
    assert durability_violations(runtime.engine) == []


def test_a_sqlite_connection_below_full_is_reported(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'normal.db'}")

    @sa.event.listens_for(engine, "connect")
    def _normal(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")  # type: ignore[attr-defined]

    try:
        (violation,) = durability_violations(engine)
    finally:
        engine.dispose()
    assert "synchronous=1" in violation.problem
    assert "synchronous=FULL" in violation.hint


@pytest.fixture
def asynchronous_postgres(postgres_schema_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """A migrated runtime whose PostgreSQL sessions run with synchronous_commit=off (set in
    the URL's connection options, as an operator might)."""
    url = postgres_schema_url + "%20-csynchronous_commit%3Doff"
    rt = Runtime.build(make_settings(tmp_path, database_url=url))
    upgrade(rt.engine)
    try:
        yield rt
    finally:
        rt.close()


@pytest.mark.postgres
def test_postgres_synchronous_commit_off_is_warned_about_in_development(
    asynchronous_postgres: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    (violation,) = durability_violations(asynchronous_postgres.engine)
    assert "synchronous_commit=off" in violation.problem
    with caplog.at_level(logging.WARNING, logger="credit_commons.gateway"):
        startup_checks(asynchronous_postgres)
    assert "synchronous_commit=off" in caplog.text
    assert "docs/configuration.md#durability-what-a-power-loss-can-lose" in caplog.text


@pytest.mark.postgres
def test_postgres_synchronous_commit_off_is_refused_in_production(
    asynchronous_postgres: Runtime, tmp_path: Path
) -> None:
    # The runtime of a production instance (its other start-up checks are tested elsewhere;
    # this one runs first).
    asynchronous_postgres.settings = make_settings(
        tmp_path, env="production", database_url=asynchronous_postgres.settings.database_url
    )
    with pytest.raises(ConfigurationError) as refused:
        startup_checks(asynchronous_postgres)
    assert "synchronous_commit=off" in refused.value.detail
    assert "synchronous_commit to on" in (refused.value.hint or "")
