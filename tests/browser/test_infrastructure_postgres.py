"""The ``page`` fixture on the PostgreSQL live server: a module overrides ``server``."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from tests.browser.live import LiveServer

pytestmark = pytest.mark.postgres


@pytest.fixture
def server(live_server_postgres: LiveServer) -> LiveServer:
    """Every page of this module opens the PostgreSQL server."""
    return live_server_postgres


def test_the_page_opens_the_postgresql_server(page: Page, server: LiveServer) -> None:
    page.goto("/readyz")
    expect(page.locator("body")).to_contain_text('"status":"ready"')
    assert page.url == server.url("/readyz")
    assert "postgresql" in server.runtime.engine.dialect.name
