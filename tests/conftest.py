"""Shared fixtures: settings in a temporary data directory, and both database backends.

``backend_url`` is parametrised over SQLite and PostgreSQL.  Each PostgreSQL use gets its own
schema (dropped afterwards) in the database named by ``COMMONS_TEST_POSTGRES_URL``, so runs
and tests never collide.  When PostgreSQL is unreachable the tests fail — unless
``COMMONS_TEST_SKIP_POSTGRES=1`` says, explicitly, to skip them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hypothesis
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from credit_commons.core.db import make_engine
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.gateway.route_groups import GROUPS
from credit_commons.gateway.surface import declare_test_routes, live_routes, surface_state
from credit_commons.runtime import Runtime

if TYPE_CHECKING:
    from tests.integration.federation.nats_server import NatsServer

# Property tests are bounded by their example counts, never by wall time: Hypothesis's default
# 200 ms deadline per example failed a test on a loaded machine (docs/testing.md: counts, not
# clocks).
hypothesis.settings.register_profile("commons", deadline=None)
hypothesis.settings.load_profile("commons")

POSTGRES_URL = os.environ.get(
    "COMMONS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SKIP_POSTGRES = os.environ.get("COMMONS_TEST_SKIP_POSTGRES") == "1"
VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(autouse=True)
def _clean_commons_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their settings explicitly; nothing leaks in from the developer's shell:
    no ``COMMONS_*`` and no ``OTEL_*`` (the settings read those too, core/tracing_settings.py:
    an endpoint there would have every app a test starts export spans to it, and a value the
    platform refuses, e.g. ``OTEL_TRACES_EXPORTER=console``, would fail every settings read)."""
    for name in list(os.environ):
        if name.startswith("OTEL_") or (
            name.startswith("COMMONS_") and not name.startswith("COMMONS_TEST_")
        ):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """A command run in-process (`serve`, `worker`, `node serve`, `committee member serve`,
    …) points the root logger at the test's captured stderr, which is closed once the test
    ends: every later record in that process would fail to write (a "Logging error" on the
    next test's stderr). Each test leaves the root logger as it found it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real ``nats-server -js`` on a free loopback port with its store under the test's
    directory (tests/integration/federation/nats_server.py), killed once the test ends."""
    from tests.integration.federation.nats_server import NatsServer  # noqa: PLC0415

    server = NatsServer(tmp_path / "jetstream")
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.kill()


@contextlib.contextmanager
def fresh_postgres_schema() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped on leaving; skips the
    test when ``COMMONS_TEST_SKIP_POSTGRES=1`` and fails it when PostgreSQL is down (for
    fixtures of any scope: the browser tests' live server keeps one for a whole session)."""
    if SKIP_POSTGRES:
        pytest.skip("COMMONS_TEST_SKIP_POSTGRES=1")
    schema = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as e:  # pragma: no cover - environment problem
        admin.dispose()
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({e.__class__.__name__}); start it "
            "or set COMMONS_TEST_SKIP_POSTGRES=1"
        )
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    with fresh_postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'commons.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def module_backend_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``backend_url`` for a module's shared fixtures (a server its tests share, each test
    making its own data): one fresh, empty database per backend per module, in each worker
    that runs the module's tests (a PostgreSQL schema of its own, dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'commons.db'}"
        return
    with fresh_postgres_schema() as url:
        yield url


GENEROUS_RATE_LIMITS = {
    f"{group.name}.{kind}": "1000000/minute" for group in GROUPS for kind in ("ip", "client")
}
"""COMMONS_RATE_LIMITS for a test that drives a whole platform from one address and one
credential per party (thousands of calls a minute); the limits themselves are tested in
tests/integration/gateway."""


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings rooted in ``tmp_path`` (development unless overridden)."""
    values: dict[str, Any] = {"data_dir": tmp_path / "var", "env": "test"}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, backend_url: str) -> Settings:
    """Test settings on each backend."""
    return make_settings(tmp_path, database_url=backend_url)


_MIGRATED_SQLITE: list[sqlite3.Connection] = []
_MIGRATED_POSTGRES: list[list[tuple[str, Any, bool]]] = []


def _migrated_sqlite() -> sqlite3.Connection:
    # An in-memory database migrated by ``upgrade`` (with the platform's pragmas, foreign
    # keys on), once per process: each pytest-xdist worker has its own, and no file is shared.
    if not _MIGRATED_SQLITE:
        engine = make_engine("sqlite://")
        upgrade(engine)
        # The pool hands each thread its own in-memory database: keep this thread's.
        _MIGRATED_SQLITE.append(engine.raw_connection().driver_connection)
    return _MIGRATED_SQLITE[0]


def _migrated_postgres() -> list[tuple[str, Any, bool]]:
    # The statements ``upgrade`` sends to migrate an empty schema (DDL and the migrations'
    # own rows, all unqualified, so they land in whichever schema search_path names), recorded
    # once per process in a schema of its own.
    if not _MIGRATED_POSTGRES:
        statements: list[tuple[str, Any, bool]] = []

        def record(
            _c: Any, _cur: Any, statement: str, parameters: Any, _x: Any, many: bool
        ) -> None:
            statements.append((statement, parameters, many))

        with fresh_postgres_schema() as url:
            engine = sa.create_engine(url)
            sa.event.listen(engine, "before_cursor_execute", record)
            try:
                upgrade(engine)
            finally:
                engine.dispose()
        _MIGRATED_POSTGRES.append(statements)
    return _MIGRATED_POSTGRES[0]


_FIRST_EPOCH = sa.table(
    "erasure_epochs",
    sa.column("number", sa.Integer()),
    sa.column("opened_at", sa.DateTime(timezone=True)),
)
"""The one row a migration stamps with the time it runs (0022: the first erasure epoch
opens with the schema); a copy gets the time of the copy, as ``upgrade`` would give it."""


def migrate(engine: Engine) -> None:
    """Bring the database behind ``engine`` to the head revision, as ``upgrade`` does.

    An empty database gets a copy of one this process migrated with ``upgrade`` once (SQLite:
    its pages, through SQLite's backup API; PostgreSQL: the statements the migrations sent,
    replayed in one transaction), which costs a few milliseconds where running every
    migration again costs a second or two per test.  A database that has tables already goes
    through ``upgrade``.  tests/integration/test_migrated_copy.py checks that the copy is what
    ``upgrade`` makes on each backend.
    """
    if _copy_migrated(engine):
        with engine.begin() as connection:
            connection.execute(
                _FIRST_EPOCH.update()
                .where(_FIRST_EPOCH.c.number == 1)
                .values(opened_at=datetime.now(UTC))
            )
    else:
        upgrade(engine)


def _copy_migrated(engine: Engine) -> bool:
    # Copy the migrated database into the one behind ``engine`` when that is empty; whether
    # it was.
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("SELECT count(*) FROM sqlite_master")
            empty = cursor.fetchone()[0] == 0
            raw.rollback()
            if empty:
                # The destination connection must have no transaction open.
                _migrated_sqlite().backup(raw.driver_connection)
                return True
        elif engine.dialect.name == "postgresql":
            cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
            empty = cursor.fetchone()[0] == 0
            if empty:
                for statement, parameters, many in _migrated_postgres():
                    (cursor.executemany if many else cursor.execute)(statement, parameters)
                raw.commit()
                return True
            raw.rollback()
    finally:
        raw.close()
    return False


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """A migrated runtime on each backend."""
    rt = Runtime.build(settings)
    migrate(rt.engine)
    try:
        yield rt
    finally:
        rt.close()


def declare_probes(app: FastAPI) -> FastAPI:
    """``app``, serving the probe routes a test added to it beside the route registry (only
    outside production: ``surface.declare_test_routes``)."""
    registered = {route.key for route in surface_state(app).registry.routes}
    declare_test_routes(app, app.state.runtime.settings, live_routes(app) - registered)
    return app


@pytest.fixture
def client(runtime: Runtime, settings: Settings) -> Iterator[TestClient]:
    """The HTTP API over ``runtime`` (a test that pins the clock does so in an autouse
    fixture, which runs before this one)."""
    with TestClient(create_app(settings, runtime=runtime)) as test_client:
        yield test_client


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The minor and moderate accessibility findings of the browser tests (a serious or
    critical one fails its test): each test's ``axe`` user property, after the run."""
    found = [
        (report.nodeid, text)
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, text in getattr(report, "user_properties", ())
        if name == "axe"
    ]
    if found:
        terminalreporter.section("axe-core: minor and moderate findings")
        for nodeid, text in found:
            terminalreporter.write_line(f"{nodeid}\n{text}")
