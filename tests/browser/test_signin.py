"""The sign-in page ``/signin`` and the console's error page, in a browser: a refused
sign-in is tied to the token field (``aria-invalid``, ``aria-describedby`` naming the
message, the error summary's link moves focus to the field), axe-core finds no serious or
critical violation on the page as offered, as refused, and on the 404 page; screenshots
are kept."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect
from tests.browser.support import Network

_REFUSED = "Sign-in failed. Check what you entered and try again."


def test_a_refused_sign_in_is_tied_to_the_token_field(
    page: Page,
    network: Network,
    check_accessibility: Callable[[Page], None],
    screenshot: Callable[[Page, str], None],
) -> None:
    page.goto("/signin")
    token = page.get_by_label("Token", exact=True)
    expect(token).not_to_have_attribute("aria-invalid", "true")
    check_accessibility(page)
    screenshot(page, "signin-en")
    token.fill("cct_" + "x" * 40)
    page.get_by_label("Field agent").check()
    page.get_by_role("button", name="Sign in").click()
    expect(token).to_have_attribute("aria-invalid", "true")
    described = (token.get_attribute("aria-describedby") or "").split()
    messages = [page.locator(f"#{d}").inner_text() for d in described]
    assert _REFUSED in messages, messages
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text(_REFUSED)
    summary.get_by_role("link").click()
    expect(token).to_be_focused()
    check_accessibility(page)
    screenshot(page, "signin-refused-en")
    assert network.blocked == []


def test_the_not_found_page(
    page: Page,
    network: Network,
    check_accessibility: Callable[[Page], None],
    screenshot: Callable[[Page, str], None],
) -> None:
    answer = page.goto("/no/such/page")
    assert answer is not None
    assert answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    check_accessibility(page)
    screenshot(page, "error-404-en")
    assert network.blocked == []
