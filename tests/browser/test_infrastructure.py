"""The browser test infrastructure end to end: the live server, Chromium, the network guard,
axe-core and the screenshots (into the test's own directory: docs/console/ holds the
console's pages only), on the API documentation page the platform serves."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.browser.live import LiveServer
from tests.browser.support import (
    FAILING_IMPACTS,
    Network,
    axe_violations,
    require_chromium,
    screenshots,
)

API_DOCS_VIOLATIONS = {"color-contrast", "nested-interactive"}
"""axe-core's serious findings on /docs today: Swagger UI's own markup nests controls and
has low-contrast text (its page's missing ``<html lang>`` is added by gateway/api_docs.py).
/docs is the API's reference for developers, not the console (whose pages must have none:
``check_accessibility``); this set changing is a finding to look at, either way."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_width(path: Path) -> int:
    # The width in the IHDR chunk, the first after the signature (PNG §11.2.2).
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert data[12:16] == b"IHDR", path
    width: int = struct.unpack(">I", data[16:20])[0]
    return width


def test_api_docs_at_phone_width_stays_on_loopback(
    page: Page,
    server: LiveServer,
    network: Network,
    tmp_path: Path,
) -> None:
    page.goto("/docs")
    expect(page).to_have_title("Credit Commons - API")
    # Swagger UI draws the operations from /openapi.json with its own script.
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.viewport_size == {"width": 360, "height": 800}
    serious = {v["id"] for v in axe_violations(page) if v["impact"] in FAILING_IMPACTS}
    assert serious == API_DOCS_VIOLATIONS
    assert page.evaluate("document.documentElement.lang") == "en"
    written = screenshots(page, tmp_path, "api-docs")
    assert written == [tmp_path / "api-docs-360.png", tmp_path / "api-docs-1280.png"]
    assert [_png_width(path) for path in written] == [360, 1280]
    assert page.viewport_size == {"width": 360, "height": 800}  # back at the phone's
    assert network.blocked == []
    hosts = {urlsplit(url).netloc for url in network.requested}
    assert hosts == {urlsplit(server.base).netloc}, network.requested
    assert any(url.endswith("/openapi.json") for url in network.requested)


def test_a_request_off_the_live_server_is_aborted(browser: Browser, server: LiveServer) -> None:
    # The guard the page fixture installs, on a context of this test's own (the page
    # fixture would fail the test for the attempt, which is what it is for).
    network = Network(server.base)
    context = browser.new_context(base_url=server.base)
    try:
        context.route("**/*", network.guard)
        page = context.new_page()
        page.goto("/healthz")
        outcome = page.evaluate(
            "url => fetch(url).then(() => 'reached', () => 'failed')", "http://192.0.2.1/x"
        )
    finally:
        context.close()
    assert outcome == "failed"
    assert network.blocked == ["http://192.0.2.1/x"]
    assert network.requested == [server.url("/healthz"), "http://192.0.2.1/x"]


def test_check_accessibility_fails_on_serious_and_reports_moderate_violations(
    page: Page, check_accessibility: Callable[[Page], None], request: pytest.FixtureRequest
) -> None:
    # A page without a level-one heading (page-has-heading-one, moderate) passes.
    page.set_content('<html lang="en"><title>t</title><main><p>Hello</p></main>')
    check_accessibility(page)
    reported = dict(request.node.user_properties)["axe"]
    assert "[moderate] page-has-heading-one" in reported
    # An image without a text alternative (image-alt) and a button without a name
    # (button-name), both critical, fail.
    page.set_content('<html lang="en"><title>t</title><main><img src="data:,"><button></button>')
    with pytest.raises(pytest.fail.Exception) as failed:
        check_accessibility(page)
    assert "[critical] image-alt" in str(failed.value)
    assert "[critical] button-name" in str(failed.value)


def test_helpers_make_the_data_a_story_starts_from(server: LiveServer) -> None:
    borrower = server.register_identity("Meghna Crafts")
    agent = server.register_identity("Asha", roles=["field_agent"])
    assert borrower.identity_token != agent.identity_token
    issued = server.issue_credential(borrower, credit_tier="A")
    assert issued["format"] == "dc+sd-jwt"
    lender = server.register_lender()
    consent_id = server.request_consent(lender, borrower)
    waiting = server.http.get(
        f"/v1/borrowers/{borrower.identity_token}/consents", headers=borrower.auth
    )
    assert waiting.status_code == 200, waiting.text
    assert [(c["consent_id"], c["status"]) for c in waiting.json()] == [(consent_id, "PENDING")]
    # A field agent's assist sends the borrower a one-time code through the channel.
    assert server.sent_codes(borrower) == []
    server.delegate_to_agent(borrower, agent)
    assisted = server.http.post(f"/v1/consents/{consent_id}/assist", headers=agent.auth)
    assert assisted.status_code == 200, assisted.text
    assert [code.consent_id for code in server.sent_codes(borrower)] == [consent_id]


def test_a_missing_chromium_fails_saying_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"run `make test`"):
        require_chromium(tmp_path / "chromium")
