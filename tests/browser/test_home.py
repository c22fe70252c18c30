"""Smoke test of the console's home page ``/`` in its three languages, at a phone's width:
the language switch (a plain link) sets the page's language and direction, axe-core finds
no serious or critical violation, and the screenshots are kept."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from tests.browser.support import Network


@pytest.mark.parametrize(
    ("code", "direction", "heading"),
    [
        ("en", "ltr", "Your credit facts, your consent"),
        ("hi", "ltr", None),
        ("ur", "rtl", None),
    ],
)
def test_home_in_each_language(
    page: Page,
    network: Network,
    check_accessibility: Callable[[Page], None],
    screenshot: Callable[[Page, str], None],
    code: str,
    direction: str,
    heading: str | None,
) -> None:
    page.goto("/")
    html = page.locator("html")
    expect(html).to_have_attribute("lang", "en")  # the browser asks for en-US
    english = page.get_by_role("heading", level=1).inner_text()
    switch = page.get_by_role("navigation", name="Language").locator(f'a[hreflang="{code}"]')
    switch.click()
    expect(html).to_have_attribute("lang", code)
    expect(html).to_have_attribute("dir", direction)
    expect(page.locator(f'a[hreflang="{code}"][aria-current="true"]')).to_be_visible()
    title = page.get_by_role("heading", level=1)
    if heading is not None:
        expect(title).to_have_text(heading)
    else:  # translated: not the English heading
        expect(title).not_to_have_text(english)
    # The areas are reachable from the home page in every language.
    for area in ("/borrower", "/agent", "/lender", "/issuer", "/audit"):
        expect(page.locator(f'main a[href="{area}"]')).to_be_visible()
    check_accessibility(page)
    screenshot(page, f"home-{code}")
    assert network.blocked == []
