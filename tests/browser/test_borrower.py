"""The borrower's whole story in a browser at a phone's width (web/borrower*.py), in English
and in Urdu: signing in with a one-time code read from the notification channel, a
lender's request (made through the lender API) approved, the lender's retrieval seen in
"who saw what" and verified in the public log by the server, the consent withdrawn in one
click, the lender's next try seen refused — then the credentials, the export (JSON and
PDF) and the erasure confirmed twice.  axe-core on every page and its screenshots in
docs/console/.  The pages' storage on PostgreSQL is tested through the HTTP app
(tests/integration/web/test_borrower_pages.py, on both databases), not by this story again.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from playwright.sync_api import Locator, Page, expect
from tests.browser.live import Identity, Lender, LiveServer

#: The log checkpoints every 10 s while it grows (settings' default): a receipt is
#: verifiable well within this.
CHECKPOINT_WAIT_S = 60
ERASE_WORD = {"en": "ERASE", "hi": "मिटाएँ", "ur": "مٹائیں"}


@dataclass(frozen=True)
class Story:
    borrower: Identity
    lender: Lender
    consent_id: str


def make_story(server: LiveServer) -> Story:
    """A borrower holding a credential, and a lender's consent request for them."""
    suffix = secrets.token_hex(3)
    borrower = server.register_identity(f"Asha Dairy {suffix}")
    server.issue_credential(borrower)
    lender = server.register_lender(f"Sahyadri Cooperative Bank {suffix}")
    return Story(borrower, lender, server.request_consent(lender, borrower))


def retrieve(server: LiveServer, story: Story) -> int:
    """The lender asks for the borrower's credential under the consent; the status code."""
    answer = server.http.get(
        "/v1/lender/credentials",
        params={"consent_id": story.consent_id},
        headers=story.lender.auth,
    )
    return answer.status_code


def sign_in_with_code(page: Page, server: LiveServer, borrower: Identity) -> None:
    """From the sign-in page, by a one-time code read from the notification channel."""
    page.goto("/signin?next=/borrower")
    page.locator('main a[href^="/signin/code"]').click()
    page.locator('input[name="identity"]').fill(borrower.identity_token)
    page.locator('form[action="/signin/code"] button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/signin/code/enter"))
    sent = [c for c in server.sent_codes(borrower) if c.purpose == "signin"]
    assert sent, "no sign-in code reached the borrower"
    page.locator('input[name="code"]').fill(sent[-1].code)
    page.locator('form[action="/signin/code/enter"] button[type="submit"]').click()
    expect(page).to_have_url(f"{server.base}/borrower")


def wait_for(page: Page, found: Locator, seconds: float = CHECKPOINT_WAIT_S) -> None:
    """Reload ``page`` until ``found`` is on it (the server checks receipts as it renders)."""
    deadline = time.monotonic() + seconds
    while found.count() == 0:
        assert time.monotonic() < deadline, f"not on {page.url} after {seconds} s"
        time.sleep(1)
        page.reload()


def whole_story(
    page: Page,
    server: LiveServer,
    check_accessibility: Callable[[Page], None],
    screenshot: Callable[[Page, str], None],
    code: str,
    prefix: str,
) -> None:
    """Sign in, approve, see the access, withdraw, see the refusal — every page checked."""
    story = make_story(server)
    lender_name = story.lender.name
    page.goto(f"/lang/{code}?next=/")

    def seen(name: str) -> None:
        check_accessibility(page)
        screenshot(page, f"{prefix}-{name}-{code}")

    # Sign in with a one-time code (the sign-in page lists the method).
    page.goto("/signin/code?next=/borrower")
    seen("signin-code")
    page.locator('input[name="identity"]').fill("not-a-token")
    page.locator('form[action="/signin/code"] button[type="submit"]').click()
    expect(page.locator('input[name="identity"]')).to_have_attribute("aria-invalid", "true")
    seen("signin-code-error")
    page.locator('input[name="identity"]').fill(story.borrower.identity_token)
    page.locator('form[action="/signin/code"] button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/signin/code/enter"))
    seen("signin-code-enter")
    sent = [c for c in server.sent_codes(story.borrower) if c.purpose == "signin"]
    assert len(sent) == 1
    page.locator('input[name="code"]').fill("000000" if sent[0].code != "000000" else "111111")
    page.locator('form[action="/signin/code/enter"] button[type="submit"]').click()
    expect(page.locator(".error-summary")).to_be_visible()
    seen("signin-code-refused")
    page.locator('input[name="code"]').fill(sent[0].code)
    page.locator('form[action="/signin/code/enter"] button[type="submit"]').click()
    expect(page).to_have_url(f"{server.base}/borrower")
    expect(page.locator("html")).to_have_attribute("lang", code)
    seen("overview")

    # The request, in plain words; approve it.
    page.locator('main a[href="/borrower/requests"]').first.click()
    approve = f'form[action="/borrower/consents/{story.consent_id}/approve"]'
    card = page.locator(f"article:has({approve})")
    expect(card).to_contain_text(lender_name)
    seen("requests")
    card.locator(f"{approve} button").click()
    expect(page.locator(".flash-success")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text(lender_name)
    assert retrieve(server, story) == 200

    # Who saw what: the lender's access, verified by the server against the public log.
    page.goto("/borrower/history")
    allowed = page.locator(
        "article.access", has=page.locator(".status-allowed"), has_text=lender_name
    )
    expect(allowed).to_have_count(1)
    wait_for(page, allowed.locator(".status-verified"))
    seen("history")

    # My consents: withdraw in one click.
    page.goto("/borrower/consents")
    seen("consents")
    revoke = page.locator(f'form[action="/borrower/consents/{story.consent_id}/revoke"] button')
    revoke.click()
    expect(page.locator(".flash-success")).to_be_visible()
    expect(revoke).to_have_count(0)
    seen("consents-withdrawn")
    page.goto(f"/borrower/consents/{story.consent_id}")
    expect(page.locator("h1")).to_contain_text(lender_name)
    seen("consent")

    # The lender tries again: refused, and the refusal is in who saw what.
    assert retrieve(server, story) == 403
    page.goto("/borrower/history")
    denied = page.locator(
        "article.access", has=page.locator(".status-denied"), has_text=lender_name
    )
    expect(denied).to_have_count(1)
    wait_for(page, denied.locator(".status-verified"))
    seen("history-refused")


@pytest.mark.parametrize("code", ["en", "ur"])
def test_the_borrowers_whole_story(
    page: Page,
    server: LiveServer,
    check_accessibility: Callable[[Page], None],
    screenshot: Callable[[Page, str], None],
    code: str,
) -> None:
    whole_story(page, server, check_accessibility, screenshot, code, "borrower")


@pytest.mark.parametrize("code", ["en", "ur"])
def test_credentials_export_and_erasure(
    page: Page,
    server: LiveServer,
    check_accessibility: Callable[[Page], None],
    screenshot: Callable[[Page, str], None],
    code: str,
) -> None:
    story = make_story(server)
    page.goto(f"/lang/{code}?next=/")
    sign_in_with_code(page, server, story.borrower)

    def seen(name: str) -> None:
        check_accessibility(page)
        screenshot(page, f"borrower-{name}-{code}")

    page.goto("/borrower/credentials")
    expect(page.locator("article.credential .status-valid")).to_have_count(1)
    seen("credentials")

    page.goto("/borrower/data")
    seen("data")
    with page.expect_download() as download:
        page.locator('form[action="/borrower/data/export.json"] button').click()
    exported = json.loads(download.value.path().read_text())
    assert exported["subject"]["identity_token"] == story.borrower.identity_token
    with page.expect_download() as download:
        page.locator('form[action="/borrower/data/export.pdf"] button').click()
    assert download.value.path().read_bytes().startswith(b"%PDF")
    page.locator('form[action="/borrower/data/discovery"] input[value="yes"] ~ button').click()
    expect(page.locator(".flash-success")).to_be_visible()
    seen("data-discoverable")

    # Erasure: what goes and what stays; a wrong word; the word; one more question.
    page.locator('main a[href="/borrower/erase"]').click()
    seen("erase")
    page.locator('input[name="confirm"]').fill("yes")
    page.locator('form[action="/borrower/erase"] button').click()
    expect(page.locator('input[name="confirm"]')).to_have_attribute("aria-invalid", "true")
    seen("erase-error")
    page.locator('input[name="confirm"]').fill(ERASE_WORD[code])
    page.locator('form[action="/borrower/erase"] button').click()
    seen("erase-confirm")
    page.locator('form[action="/borrower/erase/final"] button').click()
    expect(page.locator("pre.receipt")).to_contain_text("subject.erased")
    expect(page.locator("header .who")).to_have_count(0)  # signed out
    seen("erased")
    page.goto("/borrower")
    expect(page).to_have_url(re.compile(r"/signin\?next=/borrower$"))
    gone = server.http.get(
        f"/v1/borrowers/{story.borrower.identity_token}/consents", headers=story.borrower.auth
    )
    assert gone.status_code == 401
