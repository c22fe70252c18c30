"""The borrower's whole story (tests/browser/test_borrower.py) on PostgreSQL, in English."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page
from tests.browser.live import LiveServer
from tests.browser.test_borrower import whole_story

pytestmark = pytest.mark.postgres


@pytest.fixture
def server(live_server_postgres: LiveServer) -> LiveServer:
    """Every page of this module opens the PostgreSQL server."""
    return live_server_postgres


def test_the_borrowers_whole_story_on_postgresql(
    page: Page,
    server: LiveServer,
    check_accessibility: Callable[[Page], None],
) -> None:
    # The same pages as on SQLite, whose screenshots docs/console/ keeps: axe-core only.
    whole_story(page, server, check_accessibility, lambda _page, _name: None, "en", "unused")
