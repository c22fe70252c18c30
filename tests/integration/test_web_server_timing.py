"""The console's ``Server-Timing`` header: on its pages, error pages and static assets, never
on the API's answers (what ``bench/web.py`` reads as each page's server time)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.runtime import Runtime
from credit_commons.web.headers import server_timing

HTML = {"Accept": "text/html"}


@pytest.fixture
def browser(runtime: Runtime, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, runtime=runtime)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        yield client


def _duration(value: str | None) -> float:
    assert value is not None
    assert re.fullmatch(r"app;dur=\d+\.\d{3}", value), value
    found = server_timing(value)
    assert found is not None
    return found


def test_console_pages_assets_and_error_pages_carry_their_server_time(
    browser: TestClient,
) -> None:
    page = browser.get("/", headers=HTML)
    assert page.status_code == 200
    assert 0 < _duration(page.headers.get("server-timing")) < 60_000
    css = re.search(r'href="(/static/console\.css\?v=[0-9a-f]+)"', page.text)
    assert css is not None
    asset = browser.get(css.group(1))
    assert asset.status_code == 200
    assert _duration(asset.headers.get("server-timing")) >= 0
    missing = browser.get("/no-such-page", headers=HTML)
    assert missing.status_code == 404
    assert _duration(missing.headers.get("server-timing")) >= 0


def test_the_api_carries_no_server_timing(browser: TestClient) -> None:
    assert "server-timing" not in browser.get("/healthz").headers
    assert "server-timing" not in browser.get("/v1/no-such-thing").headers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("app;dur=12.5", 12.5),
        ('db;dur=3, app;desc="all";dur=7', 7.0),
        ("app", None),
        ("app;dur=x", None),
        ("cache;dur=1", None),
    ],
)
def test_server_timing_is_read_from_the_app_metric(value: str, expected: float | None) -> None:
    assert server_timing(value) == expected
