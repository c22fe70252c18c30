"""Shared fixtures: settings in a temporary data directory, and both database backends.

``backend_url`` is parametrised over SQLite and PostgreSQL.  Each PostgreSQL use gets its own
schema (dropped afterwards) in the database named by ``COMMONS_TEST_POSTGRES_URL``, so runs
and tests never collide.  When PostgreSQL is unreachable the tests fail — unless
``COMMONS_TEST_SKIP_POSTGRES=1`` says, explicitly, to skip them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.gateway.route_groups import GROUPS
from credit_commons.runtime import Runtime

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
    """Tests build their settings explicitly; nothing leaks in from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("COMMONS_") and not name.startswith("COMMONS_TEST_"):
            monkeypatch.delenv(name)


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


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """A migrated runtime on each backend."""
    rt = Runtime.build(settings)
    upgrade(rt.engine)
    try:
        yield rt
    finally:
        rt.close()


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
