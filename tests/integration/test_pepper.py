"""A changed pseudonymisation pepper refuses to start in production (both databases)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

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
