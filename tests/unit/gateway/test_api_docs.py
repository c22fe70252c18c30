"""The API docs page works offline (issue 14 item 10): its HTML references only same-origin
URLs, and each answers 200 with the right content type."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from tests.conftest import make_settings, migrate

from credit_commons.gateway.app import create_app
from credit_commons.gateway.route_groups import classify

EXPECTED_TYPES = {
    ".js": "javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path))
    migrate(app.state.runtime.engine)
    with TestClient(app) as test_client:
        yield test_client


def _references(html: str) -> list[str]:
    """Every URL the page loads: src/href attributes and the spec's url."""
    found = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    found += re.findall(r"""\burl:\s*["']([^"']+)["']""", html)
    return found


def test_the_docs_page_loads_nothing_from_elsewhere(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="en">' in html  # axe-core's html-has-lang
    # No absolute URL at all (a CDN, the online validator), and no protocol-relative one.
    assert "://" not in html
    assert '"validatorUrl": null' in html
    references = _references(html)
    assert len(references) == 4, references  # stylesheet, favicon, script, the spec
    for reference in references:
        parts = urlsplit(reference)
        assert not parts.scheme, reference
        assert not parts.netloc, reference
        assert reference.startswith("/"), reference
        answer = client.get(reference)
        assert answer.status_code == 200, reference
        suffix = Path(parts.path).suffix
        assert EXPECTED_TYPES[suffix] in answer.headers["content-type"], reference
        assert answer.content, reference
        # Counted against the docs group's rate limit, like the page itself.
        assert classify("GET", parts.path) == "docs", reference
    redirect = client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert not [u for u in _references(redirect.text) if urlsplit(u).netloc]
