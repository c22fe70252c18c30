"""The borrower's console pages through the HTTP app, on SQLite and PostgreSQL: signing in
with a platform token or a one-time code, the requests and consents pages with their
decisions (the same events as the API's), who saw what with the server's receipt check,
credentials, export, discovery and erasure — and CSRF, wrong role, not signed in."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.integration.consent_world import World
from tests.lenders import counted, denials, events

from credit_commons.consent import notify
from credit_commons.core.db import transaction
from credit_commons.identity import subject_of
from credit_commons.identity.auth import issue_token
from credit_commons.jobs import retention_step
from credit_commons.ledger.models import LogEntryRow
from credit_commons.ledger.worker import LogWorker
from credit_commons.web.borrower_code import ATTEMPTS, CODES_PER_HOUR
from credit_commons.web.borrower_consents import PAGE_SIZE
from credit_commons.web.borrower_models import SignInCodeRow

LOOPBACK = "http://127.0.0.1:8000"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(response: httpx.Response) -> str:
    found = _CSRF.search(response.text)
    assert found, response.text
    return found.group(1)


@pytest.fixture
def browser(world: World) -> TestClient:
    """A phone's browser on the same app, at the loopback address (plain-HTTP cookies)."""
    client = TestClient(world.http.app, base_url=LOOPBACK, raise_server_exceptions=False)
    client.headers.update(HTML)
    return client


def borrower_token(world: World) -> str:
    with transaction(world.rt.sessions) as session:
        token, _ = issue_token(session, world.rt, world.borrower, "identity")
    return token


def sign_in(browser: TestClient, token: str, role: str = "borrower") -> None:
    page = browser.get("/signin")
    done = browser.post(
        "/signin",
        data={"csrf_token": csrf_of(page), "token": token, "role": role, "next": "/borrower"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text


def post(browser: TestClient, page: str, action: str, **data: str) -> httpx.Response:
    form = browser.get(page)
    assert form.status_code == 200, form.text
    return browser.post(action, data={"csrf_token": csrf_of(form), **data}, follow_redirects=False)


def test_not_signed_in_goes_to_sign_in(browser: TestClient) -> None:
    for path in ("/borrower", "/borrower/requests", "/borrower/consents", "/borrower/history"):
        answer = browser.get(path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/signin?next=/borrower")


def test_another_role_is_refused(world: World, browser: TestClient) -> None:
    # A field agent (the role the agent sign-in needs) is not the borrower.
    made = world.http.post(
        "/v1/identities", json={"roles": ["field_agent"], "profile": {"name": "A"}}
    )
    assert made.status_code == 201, made.text
    sign_in(browser, made.json()["access_token"], role="agent")
    assert browser.get("/borrower/consents").status_code == 403


def test_approve_a_request_then_revoke_it_in_one_click(world: World, browser: TestClient) -> None:
    consent_id = world.consent(approve=False)
    sign_in(browser, borrower_token(world))
    waiting = browser.get("/borrower/requests")
    assert waiting.status_code == 200
    assert "Lender One" in waiting.text
    assert "Deciding on your loan application" not in waiting.text  # purpose 105
    assert "Looking at your accounts once" in waiting.text
    assert "Your income range" in waiting.text
    done = post(
        browser,
        "/borrower/requests",
        f"/borrower/consents/{consent_id}/approve",
        next="/borrower/requests",
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/borrower/requests"
    assert world.fetch(consent_id).status_code == 200  # the lender may read now
    consents = browser.get("/borrower/consents")
    assert "You approved the consent." in consents.text
    assert f"/borrower/consents/{consent_id}/revoke" in consents.text
    done = post(browser, "/borrower/consents", f"/borrower/consents/{consent_id}/revoke")
    assert done.status_code == 303
    assert world.fetch(consent_id).status_code == 403
    detail = browser.get(f"/borrower/consents/{consent_id}")
    assert "Withdrawn" in detail.text


def test_a_decision_without_csrf_changes_nothing(world: World, browser: TestClient) -> None:
    consent_id = world.consent(approve=False)
    sign_in(browser, borrower_token(world))
    refused = browser.post(f"/borrower/consents/{consent_id}/approve", data={"csrf_token": "x"})
    assert refused.status_code == 403
    assert (
        "PENDING"
        in world.http.get(f"/v1/borrowers/consents/{consent_id}", headers=world.as_borrower).text
    )


def test_a_state_that_does_not_allow_it_is_said_in_plain_words(
    world: World, browser: TestClient
) -> None:
    consent_id = world.consent(approve=True)
    sign_in(browser, borrower_token(world))
    done = post(browser, "/borrower/consents", f"/borrower/consents/{consent_id}/resume")
    assert done.status_code == 303
    assert "the consent has changed" in browser.get(done.headers["location"]).text


def test_another_borrowers_consent_is_not_found_and_recorded(
    world: World, browser: TestClient
) -> None:
    consent_id = world.consent(approve=False)
    made = world.http.post("/v1/identities", json={"roles": ["business"], "profile": {"name": "X"}})
    sign_in(browser, made.json()["access_token"])
    assert browser.get(f"/borrower/consents/{consent_id}").status_code == 404
    before = len(denials(world.rt))
    refused = post(browser, "/borrower/consents", f"/borrower/consents/{consent_id}/approve")
    assert refused.status_code == 404
    after = denials(world.rt)
    assert len(after) == before + 1
    assert after[-1]["reason"] == "consent.not_authorised"


def test_revoke_all_for_a_lender(world: World, browser: TestClient) -> None:
    first, second = world.consent(), world.consent()
    sign_in(browser, borrower_token(world))
    page = browser.get("/borrower/consents")
    assert "Withdraw all consents given to Lender One" in page.text
    done = post(browser, "/borrower/consents", f"/borrower/lenders/{world.lender}/revoke-all")
    assert done.status_code == 303
    for consent_id in (first, second):
        assert world.fetch(consent_id).status_code == 403


def test_who_saw_what_is_verified_against_the_log(world: World, browser: TestClient) -> None:
    consent_id = world.consent()
    assert world.fetch(consent_id).status_code == 200
    assert world.fetch(consent_id).status_code == 403  # one-time: the second is refused
    sign_in(browser, borrower_token(world))
    pending = browser.get("/borrower/history")
    assert pending.text.count("Waiting for the public log") == 2
    LogWorker(world.rt, steps=[]).run_once(force_checkpoint=True)
    page = browser.get("/borrower/history")
    assert page.text.count("Verified in the public log") == 2, page.text
    assert "Allowed" in page.text
    assert "Refused" in page.text
    assert "Lender One" in page.text


def test_code_sign_in(world: World, browser: TestClient) -> None:
    sent = post(browser, "/signin/code", "/signin/code", identity=world.borrower, next="/borrower")
    assert sent.status_code == 303
    assert sent.headers["location"].startswith("/signin/code/enter")
    codes = [c for c in notify.read_codes(world.rt, world.borrower) if c.purpose == "signin"]
    assert len(codes) == 1
    page = browser.get(sent.headers["location"])
    wrong = "000000" if codes[0].code != "000000" else "111111"
    refused = browser.post(
        "/signin/code/enter", data={"csrf_token": csrf_of(page), "code": wrong, "next": "/borrower"}
    )
    assert refused.status_code == 401
    assert "Sign-in failed" in refused.text
    assert denials(world.rt)[-1]["reason"] == "auth.code_invalid"
    done = browser.post(
        "/signin/code/enter",
        data={"csrf_token": csrf_of(refused), "code": codes[0].code, "next": "/borrower"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/borrower"
    assert browser.get("/borrower").status_code == 200
    # Spent: the same code does not sign in again.
    browser.cookies.clear()
    page = browser.get("/signin/code/enter")
    again = browser.post(
        "/signin/code/enter", data={"csrf_token": csrf_of(page), "code": codes[0].code}
    )
    assert again.status_code == 401


def test_code_sign_in_for_an_unknown_identity_looks_the_same(
    world: World, browser: TestClient
) -> None:
    unknown = "idt_" + "A" * 22
    sent = post(browser, "/signin/code", "/signin/code", identity=unknown)
    assert sent.status_code == 303
    assert sent.headers["location"].startswith("/signin/code/enter")
    assert notify.read_codes(world.rt, unknown) == []
    assert any(c["reason"] == "auth.token_invalid" for c in counted(world.rt))
    malformed = post(browser, "/signin/code", "/signin/code", identity="someone")
    assert malformed.status_code == 422
    assert 'aria-invalid="true"' in malformed.text


def test_code_limits(world: World, browser: TestClient) -> None:
    for _ in range(CODES_PER_HOUR + 1):
        post(browser, "/signin/code", "/signin/code", identity=world.borrower)
    codes = [c for c in notify.read_codes(world.rt, world.borrower) if c.purpose == "signin"]
    assert len(codes) == CODES_PER_HOUR
    subject = subject_of(world.rt, world.borrower)
    limited = events(world.rt, "access.denied")[-1]
    assert limited.subject == subject
    assert "auth.code_limited" in limited.details
    # The last challenge is unknown (limited): every try fails; a live one dies after ATTEMPTS.
    browser.cookies.clear()
    post(browser, "/signin/code", "/signin/code", identity=world.borrower)
    page = browser.get("/signin/code/enter")
    for _ in range(ATTEMPTS + 1):
        answer = browser.post("/signin/code/enter", data={"csrf_token": csrf_of(page), "code": "x"})
        assert answer.status_code == 401


def test_credentials_export_and_discovery(world: World, browser: TestClient) -> None:
    sign_in(browser, borrower_token(world))
    page = browser.get("/borrower/credentials")
    assert "Credit readiness" in page.text
    assert "Valid" in page.text
    assert "Your income range" in page.text
    exported = post(browser, "/borrower/data", "/borrower/data/export.json")
    assert exported.status_code == 200
    assert exported.json()["format"] == "credit-commons-export/v1"
    assert "attachment" in exported.headers["content-disposition"]
    pdf = post(browser, "/borrower/data", "/borrower/data/export.pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    opted = post(browser, "/borrower/data", "/borrower/data/discovery", enabled="yes")
    assert opted.status_code == 303
    assert "Lenders can now find you" in browser.get("/borrower/data").text


def test_erasure_is_confirmed_twice(world: World, browser: TestClient) -> None:
    sign_in(browser, borrower_token(world))
    wrong = post(browser, "/borrower/erase", "/borrower/erase", confirm="yes")
    assert wrong.status_code == 422
    assert 'aria-invalid="true"' in wrong.text
    second = post(browser, "/borrower/erase", "/borrower/erase", confirm="ERASE")
    assert second.status_code == 200
    assert "/borrower/erase/final" in second.text
    done = browser.post(
        "/borrower/erase/final", data={"csrf_token": csrf_of(second), "confirm": "ERASE"}
    )
    assert done.status_code == 200, done.text
    assert "Your data was erased" in done.text
    assert "signed_entry" in done.text
    assert browser.get("/borrower", follow_redirects=False).status_code == 303
    gone = world.http.get(f"/v1/borrowers/{world.borrower}/consents", headers=world.as_borrower)
    assert gone.status_code == 401


def test_an_assisted_consent_shows_the_agents_name(world: World, browser: TestClient) -> None:
    agent = world.http.post(
        "/v1/identities", json={"roles": ["field_agent"], "profile": {"name": "Ravi Kumar"}}
    ).json()
    as_agent = {"Authorization": f"Bearer {agent['access_token']}"}
    delegation = world.http.post(
        f"/v1/identities/{world.borrower}/delegations",
        json={
            "delegatee_token": agent["identity_token"],
            "type": "field_agent_assist",
            "permissions": ["assist:consent"],
            "expires_in_days": 30,
        },
        headers=world.as_borrower,
    ).json()
    accepted = world.http.post(
        f"/v1/identities/{agent['identity_token']}/delegations/{delegation['id']}/accept",
        headers=as_agent,
    )
    assert accepted.status_code == 200, accepted.text
    consent_id = world.consent(approve=False)
    assert world.http.post(f"/v1/consents/{consent_id}/assist", headers=as_agent).status_code == 200
    sign_in(browser, borrower_token(world))
    waiting = browser.get("/borrower/requests").text
    assert "Type the code Ravi Kumar sent you" in waiting
    assert f'href="/borrower/assisted/{consent_id}"' in waiting
    code = notify.read_codes(world.rt, world.borrower)[-1].code
    confirmed = world.http.post(
        f"/v1/consents/{consent_id}/assist/confirm", json={"code": code}, headers=as_agent
    )
    assert confirmed.json()["accepted"] is True
    for page in ("/borrower/consents", f"/borrower/consents/{consent_id}"):
        assert "Prepared with Ravi Kumar at" in browser.get(page).text


def test_a_receipt_that_does_not_verify_is_shown_failed(world: World, browser: TestClient) -> None:
    consent_id = world.consent()
    assert world.fetch(consent_id).status_code == 200
    assert world.fetch(consent_id).status_code == 403
    LogWorker(world.rt, steps=[]).run_once(force_checkpoint=True)
    allowed = events(world.rt, "access.allowed")[-1]
    # The stored log entry of the access altered after the checkpoint: its receipt's leaf
    # no longer leads to the signed root.
    with transaction(world.rt.sessions) as session:
        row = session.scalars(select(LogEntryRow).where(LogEntryRow.event_id == allowed.id)).one()
        row.entry = bytes(row.entry).replace(b'"v":1', b'"v":2')
    sign_in(browser, borrower_token(world))
    page = browser.get("/borrower/history")
    assert page.text.count("The check failed") == 1, page.text
    assert page.text.count("Verified in the public log") == 1  # the refusal still verifies


def test_consents_come_a_page_at_a_time(world: World, browser: TestClient) -> None:
    made = [world.consent(approve=False) for _ in range(PAGE_SIZE + 2)]
    sign_in(browser, borrower_token(world))
    first = browser.get("/borrower/requests").text
    shown = [c for c in made if f"/borrower/consents/{c}/approve" in first]
    assert shown == made[-PAGE_SIZE:]  # the newest first page
    older = re.search(r'href="(/borrower/requests\?before=cns_[0-9A-Z]{26})"', first)
    assert older is not None
    second = browser.get(older.group(1)).text
    assert [c for c in made if f"/borrower/consents/{c}/approve" in second] == made[:2]
    assert "?before=" not in second
    assert browser.get("/borrower/requests?before=nonsense").status_code == 422


def _codes_kept(world: World) -> int:
    with transaction(world.rt.read_sessions) as session:
        return len(session.scalars(select(SignInCodeRow)).all())


def test_sign_in_codes_are_kept_an_hour_and_forgotten_at_erasure(
    world: World, browser: TestClient
) -> None:
    post(browser, "/signin/code", "/signin/code", identity=world.borrower)
    assert _codes_kept(world) == 1
    world.clock.advance(timedelta(minutes=59))
    assert retention_step()(world.rt, 0)["retention_web_signin_codes"] == 0
    world.clock.advance(timedelta(minutes=2))
    assert retention_step()(world.rt, 0)["retention_web_signin_codes"] == 1
    assert _codes_kept(world) == 0
    # Erasing from the console forgets the codes sent to the borrower at once.
    post(browser, "/signin/code", "/signin/code", identity=world.borrower)
    sign_in(browser, borrower_token(world))
    second = post(browser, "/borrower/erase", "/borrower/erase", confirm="ERASE")
    browser.post("/borrower/erase/final", data={"csrf_token": csrf_of(second), "confirm": "ERASE"})
    assert _codes_kept(world) == 0
