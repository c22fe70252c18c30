"""The lender's story in a browser at a phone's width (web/lender.py), in English and in
Urdu: a lender's staff member signs in with the console token an administrator issued,
asks a borrower for consent from a template (first with a mistake, shown next to its
field), sees the borrower's decision once the borrower approved (through the API, as their
own phone would), retrieves the facts and reads the three checks — signature, status and
the access's receipt in the public log, verified by the server once a checkpoint covers
it — then, on a second consent the borrower revokes while the page is open, gets the
uniform "not permitted"; and finds opted-in borrowers.  axe-core on every page and its
screenshots in docs/console/."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Page, expect
from tests.browser.live import Identity, Lender, LiveServer
from tests.browser.support import Network

from credit_commons import lenders
from credit_commons.core.db import transaction
from credit_commons.identity import Principal

CRC = "CreditReadinessCredential"
RECEIPT_SECONDS = 60
"""How long the receipt may take to be covered by a checkpoint (the log worker publishes
one every few seconds while the log grows)."""


@dataclass(frozen=True)
class Story:
    borrower: Identity
    lender: Lender
    token: str


def _story(server: LiveServer) -> Story:
    """A borrower with a credential who opted in to discovery, a lender, and a console
    token for the lender's staff (``commons admin lender console-token``)."""
    suffix = secrets.token_hex(3)
    borrower = server.register_identity(f"Ravi Traders {suffix}")
    server.issue_credential(borrower)
    opted = server.http.put(
        f"/v1/borrowers/{borrower.identity_token}/discovery",
        json={"enabled": True},
        headers=borrower.auth,
    )
    assert opted.status_code == 200, opted.text
    lender = server.register_lender(f"Sahyadri Cooperative Bank {suffix}")
    with transaction(server.runtime.sessions) as session:
        made = lenders.issue_console_token(
            session,
            server.runtime,
            Principal("admin:test", "admin"),
            lender.client_id,
            label="Loans desk",
        )
    return Story(borrower, lender, made.token)


def _decide(server: LiveServer, story: Story, consent_id: str, action: str) -> None:
    done = server.http.post(
        f"/v1/borrowers/consents/{consent_id}/{action}", headers=story.borrower.auth
    )
    assert done.status_code == 200, done.text


def _visit(
    page: Page,
    check: Callable[[Page], None],
    shoot: Callable[[Page, str], None],
    name: str,
    code: str,
) -> None:
    check(page)
    shoot(page, f"lender-{name}-{code}")


def _receipt_verified(page: Page) -> None:
    # The receipt page, reloaded until a checkpoint covers the access (the worker's pace).
    deadline = time.monotonic() + RECEIPT_SECONDS
    while not page.locator(".check-ok").count():
        assert time.monotonic() < deadline, "no checkpoint covered the access in time"
        time.sleep(1)
        page.reload()


@pytest.mark.parametrize(("code", "direction"), [("en", "ltr"), ("ur", "rtl")])
def test_the_lenders_story(
    page: Page,
    server: LiveServer,
    network: Network,
    check_accessibility: Callable[[Page], None],
    screenshot: Callable[[Page, str], None],
    code: str,
    direction: str,
) -> None:
    story = _story(server)
    english = code == "en"
    page.goto(f"/lang/{code}?next=/lender")
    expect(page.locator("html")).to_have_attribute("dir", direction)
    # Not signed in: the sign-in page, which lists the lender's method.
    expect(page).to_have_url(re.compile(r"/signin\?next="))
    page.locator('main a[href^="/signin/lender"]').click()
    expect(page).to_have_url(re.compile(r"/signin/lender"))
    _visit(page, check_accessibility, screenshot, "signin", code)
    page.locator("#field-token").fill("ccl_wrong")
    page.locator('main form button[type="submit"]').click()
    expect(page.locator(".error-summary")).to_be_visible()
    page.locator("#field-token").fill(story.token)
    page.locator('main form button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/lender$"))
    if english:
        expect(page.locator("header .who")).to_contain_text(story.lender.name)
    _visit(page, check_accessibility, screenshot, "decisions-empty", code)

    # A request from a template: a mistake first, shown next to its field.
    page.locator('.lender-nav a[href="/lender/request"]').click()
    _visit(page, check_accessibility, screenshot, "templates", code)
    page.locator('main a[href="/lender/request?template=loan_underwriting"]').click()
    _visit(page, check_accessibility, screenshot, "request", code)
    page.locator(f'input[name="facts"][value="{CRC}:/income_bracket"]').check()
    page.locator(f'input[name="facts"][value="{CRC}:/debt_ratio_bracket"]').check()
    page.locator("#field-days").fill("45")  # longer than a month: refused
    page.locator('main form[action="/lender/request"] button[type="submit"]').click()
    expect(page.locator("#field-borrower")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#field-days")).to_have_attribute("aria-invalid", "true")
    expect(page.locator('.error-summary a[href="#field-days"]')).to_be_visible()
    _visit(page, check_accessibility, screenshot, "request-errors", code)
    page.locator("#field-borrower").fill(story.borrower.identity_token)
    page.locator("#field-days").fill("14")
    page.locator('main form[action="/lender/request"] button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/lender/consents/cns_[0-9A-Z]{26}$"))
    expect(page.locator(".status-pending")).to_be_visible()
    consent_id = page.url.rsplit("/", 1)[1]
    _visit(page, check_accessibility, screenshot, "consent-pending", code)

    # The borrower approves on their own phone; the lender sees the decision.
    _decide(server, story, consent_id, "approve")
    page.locator('.lender-nav a[href="/lender"]').click()
    expect(page.locator(f'a[href="/lender/consents/{consent_id}"]')).to_be_visible()
    expect(page.locator(".status-active")).to_have_count(1)
    _visit(page, check_accessibility, screenshot, "decisions", code)
    page.locator(f'a[href="/lender/consents/{consent_id}"]').click()
    _visit(page, check_accessibility, screenshot, "consent-approved", code)

    # Retrieve and read: the facts, and three checks that passed (the receipt may still
    # wait for its checkpoint).
    page.locator(f'form[action="/lender/consents/{consent_id}/retrieve"] button').click()
    expect(page.locator(".facts")).to_be_visible()
    expect(page.locator(".facts dd")).not_to_have_count(0)
    expect(page.locator(".checks .check-failed")).to_have_count(0)
    expect(page.locator(".checks .check-ok")).not_to_have_count(0)
    if english:
        expect(page.locator(".checks")).to_contain_text("Verified. The issuer signed")
        expect(page.locator(".checks")).to_contain_text("Valid. The issuer has not revoked")
    _visit(page, check_accessibility, screenshot, "retrieved", code)
    page.locator('a[href^="/lender/receipts/evt_"]').click()
    _receipt_verified(page)
    expect(page.locator("pre.entry")).to_contain_text('"type":"access.allowed"')
    _visit(page, check_accessibility, screenshot, "receipt", code)

    # A second consent, revoked while its page is open: the uniform denial.
    second = server.request_consent(story.lender, story.borrower)
    _decide(server, story, second, "approve")
    page.goto(f"/lender/consents/{second}")
    _decide(server, story, second, "revoke")
    page.locator(f'form[action="/lender/consents/{second}/retrieve"] button').click()
    expect(page.locator("h1")).to_have_text("Not permitted" if english else re.compile(".+"))
    expect(page.locator(".facts")).to_have_count(0)
    _visit(page, check_accessibility, screenshot, "denied", code)

    # Discovery: the opted-in borrower's public facts, and a way to ask them.
    page.locator('.lender-nav a[href="/lender/discovery"]').click()
    expect(page.locator('a[href^="/lender/request?borrower=bref_"]')).not_to_have_count(0)
    assert story.borrower.identity_token not in page.content()
    _visit(page, check_accessibility, screenshot, "discovery", code)
    assert network.blocked == []


def test_the_token_is_refused_once_revoked(page: Page, server: LiveServer) -> None:
    story = _story(server)
    page.goto("/signin/lender?next=/lender")
    page.locator("#field-token").fill(story.token)
    page.locator('main form button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/lender$"))
    with transaction(server.runtime.sessions) as session:
        admin = Principal("admin:test", "admin")
        (view,) = lenders.list_console_tokens(session, admin, story.lender.client_id)
        lenders.revoke_console_token(session, server.runtime, admin, view.token_id)
    page.goto("/lender")
    expect(page).to_have_url(re.compile(r"/signin\?next="))
    assert isinstance(server.http, httpx.Client)
