"""A changed pseudonymisation pepper refuses to start in production (both databases)."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from credit_commons.core.db import transaction
from credit_commons.core.errors import ConfigurationError
from credit_commons.core.pseudonym import Pseudonymizer
from credit_commons.core.settings import Environment
from credit_commons.privacy.models import PlatformFactRow
from credit_commons.privacy.pepper import check_peppers
from credit_commons.runtime import Runtime


def test_fingerprints_are_recorded_then_enforced(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with transaction(runtime.sessions) as session:
        first = check_peppers(session, runtime)
    with transaction(runtime.sessions) as session:
        assert check_peppers(session, runtime) == first
        stored = {row.key: row.value for row in session.query(PlatformFactRow)}
    assert stored == first
    assert all(len(v) >= 16 for v in stored.values())

    changed = replace(runtime, pseudonymizer=Pseudonymizer(b"\x07" * 32))
    with caplog.at_level(logging.WARNING), transaction(runtime.sessions) as session:
        check_peppers(session, changed)  # development: logged, not fatal
    assert "pepper changed" in caplog.text

    production = replace(
        changed, settings=runtime.settings.model_copy(update={"env": Environment.PRODUCTION})
    )
    with transaction(runtime.sessions) as session, pytest.raises(ConfigurationError) as info:
        check_peppers(session, production)
    assert "COMMONS_PSEUDONYM_PEPPER" in info.value.diagnostics()


def test_concurrent_first_starts_record_the_fingerprints_once(runtime: Runtime) -> None:
    # `commons db upgrade`, a server's schema gate opening and a restore may all record the
    # fingerprints at once: each must end with the recorded ones, none with an
    # IntegrityError.  On PostgreSQL both creators are held at their first INSERT until
    # the other has read "no record" too, so the second INSERT meets the first's row; on
    # SQLite writers serialise (BEGIN IMMEDIATE), so there the race cannot arise.
    creators = 2
    barrier = threading.Barrier(creators, timeout=10)
    held = threading.local()

    def hold(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        if statement.startswith("INSERT INTO platform_facts") and not getattr(held, "done", 0):
            held.done = 1
            barrier.wait()

    if runtime.engine.dialect.name == "postgresql":
        sa.event.listen(runtime.engine, "before_cursor_execute", hold)
    results: list[dict[str, str]] = []
    failures: list[BaseException] = []

    def create() -> None:
        try:
            with transaction(runtime.sessions) as session:
                results.append(check_peppers(session, runtime))
        except BaseException as e:  # reported by the assertion below
            failures.append(e)

    threads = [threading.Thread(target=create) for _ in range(creators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(results) == creators
    assert results[0] == results[1]
    with transaction(runtime.sessions) as session:
        stored = {row.key: row.value for row in session.query(PlatformFactRow)}
    assert stored == results[0]
