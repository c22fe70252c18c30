"""The lender's console pages through the HTTP app, on SQLite and PostgreSQL: signing in
with a console token (refusals counted, a revoked token or a suspended lender signing the
session out), a consent request from a template (field errors, the API's event), the
decisions a page at a time, retrieval with its checks and the uniform denial, receipts,
discovery; CSRF, wrong role and not signed in."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta

import httpx
import pytest
from tests.commons_inprocess import commons
from tests.integration.consent_world import CRC, World
from tests.lenders import counted, events

from credit_commons import lenders
from credit_commons.cli.support import operator
from credit_commons.core.db import transaction
from credit_commons.core.errors import ConflictError, NotFoundError
from credit_commons.identity import Principal
from credit_commons.ledger.worker import LogWorker
from credit_commons.web.lender import PAGE_SIZE

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ADMIN = operator("admin:test")


def csrf_of(response: httpx.Response) -> str:
    found = _CSRF.search(response.text)
    assert found, response.text
    return found.group(1)


def console_token(world: World, client_id: str | None = None, days: int = 30) -> str:
    with transaction(world.rt.sessions) as session:
        made = lenders.issue_console_token(
            session, world.rt, ADMIN, client_id or world.lender, label="Loans desk", days=days
        )
    return made.token


def sign_in(world: World, token: str) -> httpx.Response:
    page = world.http.get("/signin/lender", headers=HTML)
    assert page.status_code == 200
    return world.http.post(
        "/signin/lender",
        data={"csrf_token": csrf_of(page), "token": token, "next": "/lender"},
        headers=HTML,
        follow_redirects=False,
    )


@pytest.fixture
def signed_in(world: World) -> World:
    answer = sign_in(world, console_token(world))
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/lender"
    return world


def post(world: World, path: str, page: str, data: dict[str, object]) -> httpx.Response:
    form = world.http.get(page, headers=HTML)
    return world.http.post(
        path, data={"csrf_token": csrf_of(form), **data}, headers=HTML, follow_redirects=False
    )


def request_form(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "template": "loan_underwriting",
        "purpose": "loan.underwriting",
        "facts": [f"{CRC}:/income_bracket", f"{CRC}:/debt_ratio_bracket"],
        "mode": "VIEW",
        "days": "14",
        "data_life_value": "7",
        "data_life_unit": "DAY",
    }
    values.update(overrides)
    return values


# -- signing in --------------------------------------------------------------------------


def test_not_signed_in_goes_to_the_sign_in_page(world: World) -> None:
    for path in ("/lender", "/lender/request", "/lender/discovery"):
        answer = world.http.get(path, headers=HTML, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/signin?next=" + path
    listed = world.http.get("/signin", headers=HTML)
    assert 'href="/signin/lender?next=' in listed.text


def test_a_console_token_signs_in_as_its_lender(signed_in: World) -> None:
    page = signed_in.http.get("/lender", headers=HTML)
    assert page.status_code == 200
    assert "Lender One (Loans desk)" in page.text
    assert "No consent requests yet." in page.text


@pytest.mark.parametrize("token", ["", "ccl_not-a-token", "cct_abc", "x" * 300])
def test_a_bad_token_is_refused_and_counted(world: World, token: str) -> None:
    answer = sign_in(world, token)
    assert answer.status_code == 401
    assert "Sign-in failed" in answer.text
    assert "__Host-session" not in answer.headers.get("set-cookie", "")
    refusals = counted(world.rt)
    assert {"operation": "web.signin", "reason": "auth.token_invalid"}.items() <= refusals[
        0
    ].items()


def test_an_expired_or_revoked_token_is_refused(world: World) -> None:
    token = console_token(world, days=1)
    world.clock.advance(timedelta(days=1, seconds=1))
    assert sign_in(world, token).status_code == 401
    token = console_token(world)
    with transaction(world.rt.sessions) as session:
        (view,) = [
            t
            for t in lenders.list_console_tokens(session, ADMIN, world.lender)
            if t.expires_at > world.clock.now()
        ]
        lenders.revoke_console_token(session, world.rt, ADMIN, view.token_id)
    assert sign_in(world, token).status_code == 401


def test_revoking_the_token_or_suspending_the_lender_ends_the_session(world: World) -> None:
    token = console_token(world)
    assert sign_in(world, token).status_code == 303
    with transaction(world.rt.sessions) as session:
        (view,) = lenders.list_console_tokens(session, ADMIN, world.lender)
        lenders.revoke_console_token(session, world.rt, ADMIN, view.token_id)
    answer = world.http.get("/lender", headers=HTML, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/signin")
    # A new token, then the lender is suspended: the session ends, and no token is issued.
    assert sign_in(world, console_token(world)).status_code == 303
    suspended = world.http.patch(
        f"/v1/admin/lenders/{world.lender}", json={"active": False}, headers=world.admin
    )
    assert suspended.status_code == 200, suspended.text
    assert world.http.get("/lender", headers=HTML, follow_redirects=False).status_code == 303
    with pytest.raises(ConflictError), transaction(world.rt.sessions) as session:
        lenders.issue_console_token(session, world.rt, ADMIN, world.lender, label="x")


def test_only_administrators_issue_console_tokens(world: World) -> None:
    with pytest.raises(NotFoundError), transaction(world.rt.sessions) as session:
        lenders.issue_console_token(
            session, world.rt, Principal(world.borrower, "identity"), world.lender, label="x"
        )
    with pytest.raises(NotFoundError), transaction(world.rt.sessions) as session:
        lenders.issue_console_token(session, world.rt, ADMIN, "lnd_" + "x" * 22, label="x")
    assert events(world.rt, "lender.console_token_issued") == []
    console_token(world)
    (issued,) = events(world.rt, "lender.console_token_issued")
    assert json.loads(issued.details)["days"] == 30


def test_a_borrower_session_may_not_see_the_lender_pages(world: World) -> None:
    token = world.as_borrower["Authorization"].removeprefix("Bearer ")
    page = world.http.get("/signin", headers=HTML)
    world.http.post(
        "/signin",
        data={"csrf_token": csrf_of(page), "token": token, "role": "borrower", "next": "/"},
        headers=HTML,
    )
    assert world.http.get("/lender", headers=HTML).status_code == 403


def test_a_post_without_the_csrf_token_does_nothing(signed_in: World) -> None:
    answer = signed_in.http.post(
        "/lender/request",
        data=request_form(borrower=signed_in.borrower),
        headers=HTML,
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert events(signed_in.rt, "consent.requested") == []


# -- a request from a template -----------------------------------------------------------


def test_templates_then_the_form(signed_in: World) -> None:
    choose = signed_in.http.get("/lender/request", headers=HTML)
    assert 'href="/lender/request?template=loan_underwriting"' in choose.text
    assert 'href="/lender/request?template=loan_monitoring"' in choose.text
    form = signed_in.http.get("/lender/request?template=loan_monitoring", headers=HTML)
    assert 'name="frequency_value"' in form.text
    assert 'value="loan.monitoring"' in form.text
    assert 'value="loan.underwriting"' not in form.text  # not this template's purpose


def test_a_request_from_a_template_is_the_api_request(signed_in: World) -> None:
    answer = post(
        signed_in,
        "/lender/request",
        "/lender/request?template=loan_underwriting",
        request_form(borrower=signed_in.borrower),
    )
    assert answer.status_code == 303, answer.text
    consent_id = answer.headers["location"].removeprefix("/lender/consents/")
    via_api = signed_in.http.get(f"/v1/consents/{consent_id}", headers=signed_in.token())
    assert via_api.status_code == 200
    body = via_api.json()
    assert body["status"] == "PENDING"
    assert body["scopes"] == [{"type": CRC, "claims": ["/debt_ratio_bracket", "/income_bracket"]}]
    assert body["data_life"] == {"unit": "DAY", "value": 7}
    (event,) = events(signed_in.rt, "consent.requested")
    assert json.loads(event.details) == {
        "template": "loan_underwriting",
        "purpose": "loan.underwriting",
    }
    assert event.actor == lenders_actor(signed_in)  # the lender, as through the API
    page = signed_in.http.get(answer.headers["location"], headers=HTML)
    assert "Consent requested. The borrower will be asked." in page.text
    assert "Waiting for the borrower" in page.text


def lenders_actor(world: World) -> str:
    return world.rt.pseudonymizer.pseudonym("lender", world.lender)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"borrower": ""}, "borrower"),
        ({"borrower": "idt_" + "A" * 22}, "borrower"),  # nobody
        ({"facts": []}, "facts"),
        ({"facts": [f"{CRC}:/credit_tier"]}, "facts"),  # not disclosable
        ({"days": "31"}, "days"),  # longer than the template allows
        ({"days": "soon"}, "days"),
        ({"purpose": "loan.monitoring"}, "purpose"),  # another template's
        ({"data_life_value": "2", "data_life_unit": "YEAR"}, "data_life"),
    ],
)
def test_field_errors_are_shown_next_to_the_field(
    signed_in: World, overrides: dict[str, object], field: str
) -> None:
    values = request_form(borrower=signed_in.borrower)
    values.update(overrides)
    answer = post(
        signed_in, "/lender/request", "/lender/request?template=loan_underwriting", values
    )
    assert answer.status_code == 422, answer.text
    assert "There is a problem" in answer.text
    assert f'href="#field-{field}"' in answer.text
    assert f'id="error-{field}"' in answer.text
    assert events(signed_in.rt, "consent.requested") == []


# -- decisions, retrieval, receipts, discovery -------------------------------------------


def test_decisions_a_page_at_a_time(signed_in: World) -> None:
    made = [signed_in.consent(approve=False) for _ in range(PAGE_SIZE + 3)]
    signed_in.consent(approve=False)  # nothing of another lender's shows:
    other = signed_in.http.post(
        "/v1/consents",
        json={
            "template": "loan_underwriting",
            "borrower": signed_in.borrower,
            "purpose": "105",
            "consent_expiry": (signed_in.clock.now() + timedelta(days=7)).isoformat(),
            "scopes": [{"type": CRC, "claims": ["/income_bracket"]}],
        },
        headers=signed_in.token(signed_in.other),
    )
    assert other.status_code == 201
    first = signed_in.http.get("/lender", headers=HTML)
    shown = re.findall(r'href="/lender/consents/(cns_[0-9A-Z]+)"', first.text)
    assert len(shown) == PAGE_SIZE
    assert other.json()["consent_id"] not in first.text
    older = re.search(r'href="/lender\?before=(cns_[0-9A-Z]+)"', first.text)
    assert older
    second = signed_in.http.get(f"/lender?before={older.group(1)}", headers=HTML)
    rest = re.findall(r'href="/lender/consents/(cns_[0-9A-Z]+)"', second.text)
    assert len(set(shown) | set(rest)) == PAGE_SIZE + 4  # every one of this lender's, once
    assert not set(shown) & set(rest)
    assert set(made) <= set(shown) | set(rest)
    assert shown == sorted(shown, reverse=True)  # newest first
    assert "/lender?before=" not in second.text


def test_retrieve_shows_the_facts_and_their_checks(signed_in: World) -> None:
    consent_id = signed_in.consent()
    page = signed_in.http.get(f"/lender/consents/{consent_id}", headers=HTML)
    assert "Approved" in page.text
    answer = post(
        signed_in, f"/lender/consents/{consent_id}/retrieve", f"/lender/consents/{consent_id}", {}
    )
    assert answer.status_code == 200, answer.text
    assert "Income bracket" in answer.text
    assert "Verified. The issuer signed these facts" in answer.text
    assert "Valid. The issuer has not revoked" in answer.text
    assert "Recorded. This access is written in the public log" in answer.text
    assert answer.headers["cache-control"] == "no-store"
    (allowed,) = events(signed_in.rt, "access.allowed")
    assert json.loads(allowed.details) == {"operation": "credentials.read"}
    assert allowed.actor == lenders_actor(signed_in)
    event_id = re.search(r'href="/lender/receipts/(evt_[0-9A-Z]+)"', answer.text)
    assert event_id
    pending = signed_in.http.get(f"/lender/receipts/{event_id.group(1)}", headers=HTML)
    assert "Not in a checkpoint yet." in pending.text
    LogWorker(signed_in.rt, steps=[]).run_once(force_checkpoint=True)
    verified = signed_in.http.get(f"/lender/receipts/{event_id.group(1)}", headers=HTML)
    assert "Verified. The platform checked the log" in verified.text
    assert event_id.group(1) in verified.text


def test_a_refused_retrieval_says_only_not_permitted(signed_in: World) -> None:
    consent_id = signed_in.consent()
    form = f"/lender/consents/{consent_id}"
    signed_in.decide(consent_id, "revoke")
    revoked = post(signed_in, f"{form}/retrieve", form, {})
    assert revoked.status_code == 403
    assert "Not permitted" in revoked.text
    assert "revoked" not in revoked.text.lower()
    denial = signed_in.last_denial()
    assert json.loads(denial.details) == {
        "operation": "credentials.read",
        "reason": "consent.revoked",
    }
    assert denial.actor == lenders_actor(signed_in)
    # A consent that does not exist (or is another lender's): the same answer.
    unknown = "cns_" + "0" * 26
    answer = signed_in.http.post(
        f"/lender/consents/{unknown}/retrieve",
        data={"csrf_token": csrf_of(revoked)},
        headers=HTML,
    )
    assert answer.status_code == 403
    assert answer.text.replace(unknown, consent_id) == revoked.text


def test_discovery_shows_opted_in_borrowers(signed_in: World) -> None:
    assert "No borrower to show." in signed_in.http.get("/lender/discovery", headers=HTML).text
    opted = signed_in.http.put(
        f"/v1/borrowers/{signed_in.borrower}/discovery",
        json={"enabled": True},
        headers=signed_in.as_borrower,
    )
    assert opted.status_code == 200
    page = signed_in.http.get("/lender/discovery?tier=B", headers=HTML)
    assert signed_in.borrower not in page.text
    link = re.search(r'href="(/lender/request\?borrower=bref_[^"]+)"', page.text)
    assert link
    assert (
        "No borrower to show." in signed_in.http.get("/lender/discovery?tier=A", headers=HTML).text
    )
    choose = signed_in.http.get(link.group(1).replace("&amp;", "&"), headers=HTML)
    assert "template=loan_underwriting&amp;borrower=bref_" in choose.text


def test_the_administrators_commands(world: World) -> None:
    settings = world.rt.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    env.update(
        COMMONS_DATA_DIR=str(settings.data_dir),
        COMMONS_DATABASE_URL=str(settings.database_url),
        COMMONS_ENV="test",
    )
    made = commons(
        ["admin", "lender", "console-token", world.lender, "--label", "Desk 2", "--json"], env
    )
    assert made.returncode == 0, made.stderr
    issued = json.loads(made.stdout)
    assert issued["token"].startswith("ccl_")
    assert sign_in(world, issued["token"]).status_code == 303
    listed = commons(["admin", "lender", "console-tokens", world.lender, "--json"], env)
    assert [t["token_id"] for t in json.loads(listed.stdout)] == [issued["token_id"]]
    assert issued["token"] not in listed.stdout  # never shown again
    revoked = commons(["admin", "lender", "revoke-console-token", issued["token_id"]], env)
    assert revoked.returncode == 0, revoked.stderr
    assert world.http.get("/lender", headers=HTML, follow_redirects=False).status_code == 303
    refused = commons(["admin", "lender", "console-token", "lnd_" + "x" * 22, "--label", "x"], env)
    assert refused.returncode != 0
