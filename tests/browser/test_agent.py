"""The assisted consent in a browser at a phone's width (web/agent.py), in English and in
Urdu: a registered borrower delegates to a field agent, a lender asks for consent, the agent
finds the borrower, prepares the consent and sends the code; the code is read from the
notification channel as the borrower would read it, and typed on the agent's screen — or
on the borrower's own phone.  The consent is then active and shows the agent's name to
the borrower.  axe-core on every page and its screenshots in docs/console/."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect
from tests.browser.live import Identity, LiveServer
from tests.browser.support import Network

AGENT_NAME = "Meena Kumari"


@dataclass(frozen=True)
class Story:
    borrower: Identity
    agent: Identity
    lender_name: str
    consent_id: str
    delegation: str


def _story(server: LiveServer) -> Story:
    """A borrower with a credential who delegated to the agent, and a lender's request."""
    suffix = secrets.token_hex(3)
    borrower = server.register_identity(f"Ravi Traders {suffix}")
    agent = server.register_identity(AGENT_NAME, roles=["field_agent"])
    server.issue_credential(borrower)
    delegation = server.delegate_to_agent(borrower, agent)
    lender_name = f"Sahyadri Cooperative Bank {suffix}"
    lender = server.register_lender(lender_name)
    return Story(borrower, agent, lender_name, server.request_consent(lender, borrower), delegation)


def _sign_in(page: Page, who: Identity, role: str, next_path: str) -> None:
    page.goto(f"/signin?next={next_path}")
    form = page.locator('form[action="/signin"]')
    form.locator('input[name="token"]').fill(who.access_token)
    form.locator(f'input[name="role"][value="{role}"]').check()
    form.locator('button[type="submit"]').click()
    expect(page).to_have_url(re.compile(re.escape(next_path) + "$"))


def _code(server: LiveServer, story: Story) -> str:
    sent = server.sent_codes(story.borrower)
    assert sent, "no code reached the borrower"
    assert sent[-1].consent_id == story.consent_id
    return sent[-1].code


def _wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def _consent(server: LiveServer, story: Story) -> dict[str, object]:
    answer = server.http.get(
        f"/v1/borrowers/consents/{story.consent_id}", headers=story.borrower.auth
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, object] = answer.json()
    return found


@pytest.mark.parametrize(("code", "direction"), [("en", "ltr"), ("ur", "rtl")])
def test_the_agent_helps_a_borrower_give_consent(
    page: Page,
    server: LiveServer,
    network: Network,
    check_accessibility: Callable[[Page], None],
    screenshot: Callable[[Page, str], None],
    code: str,
    direction: str,
) -> None:
    story = _story(server)
    page.goto(f"/lang/{code}?next=/")
    _sign_in(page, story.agent, "agent", "/agent")
    expect(page.locator("html")).to_have_attribute("dir", direction)

    def seen(name: str) -> None:
        check_accessibility(page)
        screenshot(page, f"agent-{name}-{code}")

    # 1. Find the borrower: the list of borrowers who delegated, and the token form.
    mine = page.locator(f'main a[href="/agent/borrowers/{story.delegation}"]')
    expect(mine).to_be_visible()
    seen("find")
    token_field = page.locator('input[name="token"]')
    token_field.fill("idt_" + "Z" * 22)  # nobody's, or not delegated: the same answer
    page.locator('form[action="/agent/find"] button[type="submit"]').click()
    expect(token_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".error-summary")).to_be_visible()
    seen("find-error")
    token_field.fill(story.borrower.identity_token)
    page.locator('form[action="/agent/find"] button[type="submit"]').click()
    expect(page).to_have_url(f"{server.base}/agent/borrowers/{story.delegation}")
    expect(page.locator("main")).to_contain_text(story.lender_name)
    seen("requests")

    # 2. Prepare: the request in plain words, and the code to the borrower's phone.
    page.locator(f'main a[href="/agent/consents/{story.consent_id}"]').click()
    expect(page.locator("main")).to_contain_text(AGENT_NAME)
    expect(page.locator("dl.terms")).to_contain_text(story.lender_name)
    seen("prepare")
    assert server.sent_codes(story.borrower) == []
    page.locator(f'form[action="/agent/consents/{story.consent_id}/send"] button').click()
    expect(page).to_have_url(f"{server.base}/agent/consents/{story.consent_id}/confirm")
    expect(page.locator(".flash-success")).to_be_visible()
    seen("confirm")

    # 3. Confirm: the borrower reads the code from their phone (the notification channel).
    sent = _code(server, story)
    code_field = page.locator('input[name="code"]')
    code_field.fill(_wrong(sent))
    page.locator(f'form[action="/agent/consents/{story.consent_id}/confirm"] button').click()
    expect(code_field).to_have_attribute("aria-invalid", "true")
    seen("confirm-error")
    assert _consent(server, story)["status"] == "PENDING"
    page.locator('input[name="code"]').fill(sent)
    page.locator(f'form[action="/agent/consents/{story.consent_id}/confirm"] button').click()
    expect(page).to_have_url(f"{server.base}/agent/consents/{story.consent_id}/done")
    expect(page.locator("main")).to_contain_text(AGENT_NAME)
    seen("done")
    granted = _consent(server, story)
    assert (granted["status"], granted["approval"], granted["assisted"]) == (
        "ACTIVE",
        "assisted",
        True,
    )

    # A request the agent may not see: the same plain "not found" page.
    page.goto("/agent/consents/cns_" + "0" * 26)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    seen("not-found")

    # 4. The borrower, on their own phone, sees who helped them.
    _sign_in(page, story.borrower, "borrower", f"/borrower/assisted/{story.consent_id}")
    expect(page.locator("main .lead")).to_contain_text(AGENT_NAME)
    expect(page.locator('input[name="code"]')).to_have_count(0)
    seen("borrower-given")
    assert network.blocked == []


@pytest.mark.parametrize("code", ["en", "ur"])
def test_the_borrower_types_the_code_on_their_own_phone(
    page: Page,
    server: LiveServer,
    check_accessibility: Callable[[Page], None],
    screenshot: Callable[[Page, str], None],
    code: str,
) -> None:
    story = _story(server)
    page.goto(f"/lang/{code}?next=/")
    _sign_in(page, story.agent, "agent", f"/agent/consents/{story.consent_id}")
    page.locator(f'form[action="/agent/consents/{story.consent_id}/send"] button').click()
    expect(page).to_have_url(f"{server.base}/agent/consents/{story.consent_id}/confirm")
    sent = _code(server, story)

    path = f"/borrower/assisted/{story.consent_id}"
    _sign_in(page, story.borrower, "borrower", path)
    expect(page.locator("main .lead")).to_contain_text(AGENT_NAME)
    check_accessibility(page)
    screenshot(page, f"agent-borrower-confirm-{code}")
    code_field = page.locator('input[name="code"]')
    code_field.fill(_wrong(sent))
    page.locator(f'form[action="{path}"] button').click()
    expect(code_field).to_have_attribute("aria-invalid", "true")
    check_accessibility(page)
    screenshot(page, f"agent-borrower-confirm-error-{code}")
    page.locator('input[name="code"]').fill(sent)
    page.locator(f'form[action="{path}"] button').click()
    expect(page.locator(".flash-success")).to_be_visible()
    expect(page.locator("main .lead")).to_contain_text(AGENT_NAME)
    granted = _consent(server, story)
    assert (granted["status"], granted["approval"]) == ("ACTIVE", "assisted")
