"""The field agent's pages (web/agent.py) through the HTTP app, on SQLite and PostgreSQL:
find the borrower, prepare the consent, send the code, confirm it (on the agent's screen or
the borrower's own phone), the agent's name shown to the borrower; refusals worded alike
and recorded as the API records them; CSRF, roles and sign-in."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, inspect
from tests.integration.test_web_console import HTML, LOOPBACK, assert_secure_html, csrf_of
from tests.lenders import denials

from credit_commons.consent import assisted, decisions, notify
from credit_commons.consent import requests as consent_requests
from credit_commons.consent.model import ConsentRequest
from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.identity import delegations
from credit_commons.identity import service as identity_service
from credit_commons.identity.auth import Principal
from credit_commons.identity.schemas import DelegationCreate, IdentityCreate
from credit_commons.issuer.catalogue import CREDIT_READINESS
from credit_commons.runtime import Runtime
from credit_commons.web import agent as agent_pages
from credit_commons.web.agent import PAGE_SIZE

NOT_FOUND = "We found no borrower with this token who has asked you to help them."
MISSING = "There is no such borrower or request, or the borrower has not given you permission"


@dataclass(frozen=True)
class Person:
    token: str
    access: str


class _Lender:
    client_id = "lnd_" + "a" * 22
    purposes = frozenset({"105"})


def _person(rt: Runtime, name: str, roles: list[str]) -> Person:
    with transaction(rt.sessions) as session:
        body = IdentityCreate.model_validate({"roles": roles, "profile": {"name": name}})
        made = identity_service.create_identity(session, rt, body)
    return Person(made.identity_token, made.access_token)


def _delegate(rt: Runtime, borrower: Person, agent: Person) -> str:
    with transaction(rt.sessions) as session:
        made = delegations.create_delegation(
            session,
            rt,
            Principal(borrower.token, "identity"),
            borrower.token,
            DelegationCreate.model_validate(
                {
                    "delegatee_token": agent.token,
                    "type": "field_agent_assist",
                    "permissions": ["assist:consent"],
                }
            ),
        )
        delegations.accept_delegation(session, rt, Principal(agent.token, "identity"), made.id)
    return made.id


def _request(rt: Runtime, borrower: Person) -> str:
    body = {
        "template": "loan_underwriting",
        "borrower": borrower.token,
        "purpose": "105",
        "consent_expiry": (rt.clock.now() + timedelta(days=7)).isoformat(),
        "scopes": [{"type": CREDIT_READINESS.name, "claims": ["/income_bracket"]}],
    }
    with transaction(rt.sessions) as session:
        made = consent_requests.request_consent(
            session, rt, _Lender(), ConsentRequest.model_validate(body)
        )
    return made.consent_id


@pytest.fixture
def app_client(runtime: Runtime, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, runtime=runtime)
    with TestClient(app, base_url=LOOPBACK, raise_server_exceptions=False) as client:
        yield client


@dataclass(frozen=True)
class Story:
    borrower: Person
    agent: Person
    consent_id: str
    delegation: str


@pytest.fixture
def story(runtime: Runtime) -> Story:
    borrower = _person(runtime, "Ravi Traders", ["business"])
    agent = _person(runtime, "Meena Kumari", ["field_agent"])
    delegation = _delegate(runtime, borrower, agent)
    return Story(borrower, agent, _request(runtime, borrower), delegation)


def _sign_in(client: TestClient, person: Person, role: str) -> None:
    page = client.get("/signin", headers=HTML)
    done = client.post(
        "/signin",
        data={"csrf_token": csrf_of(page), "token": person.access, "role": role, "next": "/"},
        headers=HTML,
        follow_redirects=False,
    )
    assert done.status_code == 303


def _post(client: TestClient, path: str, form: dict[str, str] | None = None) -> httpx.Response:
    token = csrf_of(client.get("/agent" if path.startswith("/agent") else path, headers=HTML))
    return client.post(
        path, data={"csrf_token": token, **(form or {})}, headers=HTML, follow_redirects=False
    )


def text_of(response: httpx.Response) -> str:
    """The page's text with its character references resolved."""
    return html.unescape(response.text).replace("'", "’")


def _codes(rt: Runtime, borrower: Person) -> list[str]:
    return [c.code for c in notify.read_codes(rt, borrower.token)]


def _wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def test_not_signed_in_and_wrong_role(app_client: TestClient, story: Story) -> None:
    away = app_client.get("/agent", headers=HTML, follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"] == "/signin?next=/agent"
    mine = app_client.get(f"/borrower/assisted/{story.consent_id}", headers=HTML)
    assert mine.url.path == "/signin"
    _sign_in(app_client, story.borrower, "borrower")
    assert app_client.get("/agent", headers=HTML).status_code == 403
    _sign_in(app_client, story.agent, "agent")
    assert app_client.get(f"/borrower/assisted/{story.consent_id}", headers=HTML).status_code == 403


def test_the_agent_finds_prepares_and_confirms(
    app_client: TestClient, runtime: Runtime, story: Story
) -> None:
    _sign_in(app_client, story.agent, "agent")
    home = app_client.get("/agent", headers=HTML)
    assert home.status_code == 200
    assert_secure_html(home)
    # The borrower is named by the delegation's id: no identity token in a URL.
    assert f'href="/agent/borrowers/{story.delegation}"' in home.text
    assert len(home.content) <= 100_000

    found = _post(app_client, "/agent/find", {"token": story.borrower.token})
    assert found.status_code == 303
    assert found.headers["location"] == f"/agent/borrowers/{story.delegation}"
    requests_page = app_client.get(found.headers["location"], headers=HTML)
    assert f'href="/agent/consents/{story.consent_id}"' in requests_page.text
    assert "Your income range" in requests_page.text
    assert "A one-time look at your accounts" in requests_page.text
    assert "Only once" in requests_page.text

    prepare = app_client.get(f"/agent/consents/{story.consent_id}", headers=HTML)
    assert prepare.status_code == 200
    assert "with your name: Meena Kumari" in prepare.text

    # A form without the CSRF token changes nothing.
    forged = app_client.post(
        f"/agent/consents/{story.consent_id}/send", headers=HTML, follow_redirects=False
    )
    assert forged.status_code == 403
    assert _codes(runtime, story.borrower) == []

    sent = _post(app_client, f"/agent/consents/{story.consent_id}/send")
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/agent/consents/{story.consent_id}/confirm"
    confirm_page = app_client.get(sent.headers["location"], headers=HTML)
    assert "A code was sent to the borrower’s phone" in text_of(confirm_page)
    code = _codes(runtime, story.borrower)[-1]

    path = f"/agent/consents/{story.consent_id}/confirm"
    malformed = _post(app_client, path, {"code": "12ab"})
    assert malformed.status_code == 422
    assert "Enter the 6 digits of the code." in malformed.text
    assert 'aria-invalid="true"' in malformed.text
    assert 'href="#field-code"' in malformed.text

    wrong = _post(app_client, path, {"code": _wrong(code)})
    assert wrong.status_code == 422
    assert "This code is not right." in wrong.text
    assert [d["reason"] for d in denials(runtime)] == ["consent.otp_invalid"]

    right = _post(app_client, path, {"code": f"{code[:3]} {code[3:]}"})
    assert right.status_code == 303
    assert right.headers["location"] == f"/agent/consents/{story.consent_id}/done"
    done = app_client.get(right.headers["location"], headers=HTML)
    assert done.status_code == 200
    assert "The consent is given" in done.text
    assert "you, Meena Kumari, helped them" in done.text
    # A granted consent is no longer one to prepare: the prepare page sends to "done".
    again = app_client.get(f"/agent/consents/{story.consent_id}", follow_redirects=False)
    assert again.status_code == 303

    # The borrower sees the agent's name with the consent.
    app_client.cookies.clear()
    _sign_in(app_client, story.borrower, "borrower")
    mine = app_client.get(f"/borrower/assisted/{story.consent_id}", headers=HTML)
    assert mine.status_code == 200
    assert "with the help of field agent Meena Kumari" in mine.text


def test_find_refuses_alike_and_records_the_attempt(
    app_client: TestClient, runtime: Runtime, story: Story
) -> None:
    stranger = _person(runtime, "Someone Else", ["business"])
    _request(runtime, stranger)
    _sign_in(app_client, story.agent, "agent")
    empty = _post(app_client, "/agent/find", {"token": ""})
    assert empty.status_code == 422
    assert "Enter the borrower’s identity token." in text_of(empty)
    malformed = _post(app_client, "/agent/find", {"token": "not-a-token"})
    assert malformed.status_code == 422
    assert "It starts with idt_." in malformed.text

    unknown = _post(app_client, "/agent/find", {"token": "idt_" + "Z" * 20})
    not_mine = _post(app_client, "/agent/find", {"token": stranger.token})
    assert unknown.status_code == not_mine.status_code == 404
    assert NOT_FOUND in unknown.text
    assert NOT_FOUND in not_mine.text
    # Only the borrower who exists has an attempt in their history.
    assert [(d["operation"], d["reason"]) for d in denials(runtime)] == [
        ("consent.assist_find", "consent.not_authorised")
    ]
    page = app_client.get(f"/agent/borrowers/{stranger.token}", headers=HTML)
    assert page.status_code == 404
    assert MISSING in page.text


def test_another_agents_delegation_names_no_borrower(
    app_client: TestClient, runtime: Runtime, story: Story
) -> None:
    # The delegation's id in the URL is only this agent's way to a borrower: another agent
    # gets the page of a borrower who does not exist, and an identity token is no way in.
    other_agent = _person(runtime, "Other Agent", ["field_agent"])
    _sign_in(app_client, other_agent, "agent")
    for path in (story.delegation, story.borrower.token, "dlg_" + "0" * 26):
        page = app_client.get(f"/agent/borrowers/{path}", headers=HTML)
        assert page.status_code == 404, path
        assert MISSING in page.text
        if path != story.borrower.token:  # (the language links repeat the path asked for)
            assert story.borrower.token not in page.text
    _sign_in(app_client, story.agent, "agent")
    assert (
        app_client.get(f"/agent/borrowers/{story.borrower.token}", headers=HTML).status_code == 404
    )
    assert app_client.get(f"/agent/borrowers/{story.delegation}", headers=HTML).status_code == 200


def test_a_consent_of_a_borrower_who_did_not_delegate_is_not_found(
    app_client: TestClient, runtime: Runtime, story: Story
) -> None:
    other_agent = _person(runtime, "Other Agent", ["field_agent"])
    _sign_in(app_client, other_agent, "agent")
    page = app_client.get(f"/agent/consents/{story.consent_id}", headers=HTML)
    unknown = app_client.get("/agent/consents/cns_" + "0" * 26, headers=HTML)
    assert page.status_code == unknown.status_code == 404
    assert MISSING in page.text
    assert MISSING in unknown.text
    sent = _post(app_client, f"/agent/consents/{story.consent_id}/send")
    assert sent.status_code == 404
    assert _codes(runtime, story.borrower) == []
    assert {(d["operation"], d["reason"]) for d in denials(runtime)} == {
        ("consent.assist_read", "consent.not_authorised"),
        ("consent.assist", "consent.not_authorised"),
    }


def test_no_live_code_is_said_in_plain_words(
    app_client: TestClient, runtime: Runtime, story: Story
) -> None:
    _sign_in(app_client, story.agent, "agent")
    answer = _post(app_client, f"/agent/consents/{story.consent_id}/confirm", {"code": "123456"})
    assert answer.status_code == 422
    assert "No code works now" in answer.text
    assert [d["reason"] for d in denials(runtime)] == ["consent.otp_expired"]


def test_the_borrower_confirms_on_their_own_phone(
    app_client: TestClient, runtime: Runtime, story: Story
) -> None:
    _sign_in(app_client, story.agent, "agent")
    assert _post(app_client, f"/agent/consents/{story.consent_id}/send").status_code == 303
    code = _codes(runtime, story.borrower)[-1]
    app_client.cookies.clear()
    _sign_in(app_client, story.borrower, "borrower")
    path = f"/borrower/assisted/{story.consent_id}"
    page = app_client.get(path, headers=HTML)
    assert page.status_code == 200
    assert_secure_html(page)
    assert "Field agent Meena Kumari is helping you with this request." in page.text
    token = csrf_of(page)
    wrong = app_client.post(
        path, data={"csrf_token": token, "code": _wrong(code)}, headers=HTML, follow_redirects=False
    )
    assert wrong.status_code == 422
    assert "Check the code in the message on your phone." in wrong.text
    right = app_client.post(
        path, data={"csrf_token": token, "code": code}, headers=HTML, follow_redirects=False
    )
    assert right.status_code == 303
    shown = app_client.get(path, headers=HTML)
    assert "with the help of field agent Meena Kumari" in shown.text
    assert re.search(r"The consent is given", shown.text)
    other = _person(runtime, "Someone Else", ["business"])
    app_client.cookies.clear()
    _sign_in(app_client, other, "borrower")
    assert app_client.get(path, headers=HTML).status_code == 404


def test_three_codes_an_hour_then_a_plain_refusal(
    app_client: TestClient, runtime: Runtime, story: Story
) -> None:
    _sign_in(app_client, story.agent, "agent")
    for _ in range(3):
        assert _post(app_client, f"/agent/consents/{story.consent_id}/send").status_code == 303
    fourth = _post(app_client, f"/agent/consents/{story.consent_id}/send")
    assert fourth.status_code == 303
    assert fourth.headers["location"] == f"/agent/consents/{story.consent_id}"
    page = app_client.get(fourth.headers["location"], headers=HTML)
    assert "Three codes were sent for this request in the last hour." in page.text
    assert len(_codes(runtime, story.borrower)) == 3


def test_the_requests_are_paged_newest_first(
    app_client: TestClient, runtime: Runtime, story: Story
) -> None:
    later = [_request(runtime, story.borrower) for _ in range(PAGE_SIZE)]
    everything = sorted([story.consent_id, *later], reverse=True)
    _sign_in(app_client, story.agent, "agent")
    first = app_client.get(f"/agent/borrowers/{story.delegation}", headers=HTML)
    shown = re.findall(r'href="/agent/consents/(cns_[0-9A-Z]{26})"', first.text)
    assert shown == everything[:PAGE_SIZE]
    older = re.search(r'href="(/agent/borrowers/[^"?]+\?before=cns_[0-9A-Z]{26})"', first.text)
    assert older is not None
    second = app_client.get(older.group(1), headers=HTML)
    assert (
        re.findall(r'href="/agent/consents/(cns_[0-9A-Z]{26})"', second.text)
        == everything[PAGE_SIZE:]
    )
    assert "?before=" not in second.text
    assert len(first.content) <= 100_000


def test_the_pages_in_hindi(app_client: TestClient, story: Story) -> None:
    _sign_in(app_client, story.agent, "agent")
    app_client.get("/lang/hi?next=/agent")
    page = app_client.get(f"/agent/consents/{story.consent_id}", headers=HTML)
    assert '<html lang="hi" dir="ltr">' in page.text
    assert "सहमति तैयार करें" in page.text
    assert "Meena Kumari" in page.text


def test_once_the_borrower_revokes_it_the_agent_sees_nothing(
    app_client: TestClient, runtime: Runtime, story: Story
) -> None:
    _sign_in(app_client, story.agent, "agent")
    assert _post(app_client, f"/agent/consents/{story.consent_id}/send").status_code == 303
    code = _codes(runtime, story.borrower)[-1]
    confirm = _post(app_client, f"/agent/consents/{story.consent_id}/confirm", {"code": code})
    assert confirm.status_code == 303
    done = f"/agent/consents/{story.consent_id}/done"
    assert app_client.get(done, headers=HTML).status_code == 200
    with transaction(runtime.sessions) as session:
        decisions.decide(
            session,
            runtime,
            Principal(story.borrower.token, "identity"),
            story.consent_id,
            "revoke",
        )
    gone = app_client.get(done, headers=HTML)
    assert gone.status_code == 404
    assert MISSING in gone.text


# -- the agent's borrowers, a page at a time (keyset by delegation id) --------------------


def test_the_agents_borrowers_are_paged_by_delegation_id(
    app_client: TestClient, runtime: Runtime, story: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_pages, "PAGE_SIZE", 3)
    more = [_person(runtime, f"Borrower {i}", ["business"]) for i in range(7)]
    ids = sorted([story.delegation, *(_delegate(runtime, b, story.agent) for b in more)])
    # Not on the agent's list: a revoked delegation, and another agent's.
    gone = _person(runtime, "Gone", ["business"])
    revoked = _delegate(runtime, gone, story.agent)
    with transaction(runtime.sessions) as session:
        delegations.revoke_delegation(session, runtime, Principal(gone.token, "identity"), revoked)
    _delegate(runtime, gone, _person(runtime, "Other Agent", ["field_agent"]))
    _sign_in(app_client, story.agent, "agent")
    link = re.compile(r'href="(/agent\?(?:after|before)=dlg_[0-9A-Z]{26})">([^<]+)<')
    listed = re.compile(r'href="/agent/borrowers/(dlg_[0-9A-Z]{26})"')
    pages: list[list[str]] = []
    path: str | None = "/agent"
    while path is not None:
        page = app_client.get(path, headers=HTML)
        assert page.status_code == 200
        pages.append(listed.findall(page.text))
        path = next((u for u, text in link.findall(page.text) if "Next" in text), None)
    assert pages == [ids[0:3], ids[3:6], ids[6:8]]
    # And back, from the last page.
    back = [u for u, text in link.findall(page.text) if "Previous" in text]
    assert back == [f"/agent?before={ids[6]}"]
    previous = app_client.get(back[0], headers=HTML)
    assert listed.findall(previous.text) == ids[3:6]
    assert f'href="/agent?before={ids[3]}"' in previous.text
    assert f'href="/agent?after={ids[5]}"' in previous.text
    assert app_client.get("/agent?after=nonsense", headers=HTML).status_code == 404


def test_a_page_of_delegations_is_one_keyset_read(runtime: Runtime, story: Story) -> None:
    more = [_person(runtime, f"Borrower {i}", ["business"]) for i in range(4)]
    ids = sorted([story.delegation, *(_delegate(runtime, b, story.agent) for b in more)])
    now = runtime.clock.now()
    with transaction(runtime.read_sessions) as session:
        first = delegations.assist_delegations_page(session, story.agent.token, now, limit=2)
        after = delegations.assist_delegations_page(
            session, story.agent.token, now, after=ids[1], limit=2
        )
        before = delegations.assist_delegations_page(
            session, story.agent.token, now, before=ids[4], limit=2
        )
        later = delegations.assist_delegations_page(
            session, story.agent.token, now + timedelta(days=400), limit=2
        )
    assert [d.id for d in first] == ids[0:2]
    assert [d.id for d in after] == ids[2:4]
    assert [d.id for d in before] == ids[2:4]
    assert later == []  # expired
    assert {d.delegator_token for d in first} <= {story.borrower.token, *(b.token for b in more)}
    # The read goes by (delegatee_token, id), in order, and stops at its limit.
    if runtime.engine.dialect.name == "sqlite":
        plan = sql_plan(
            runtime, "SELECT id FROM delegations WHERE delegatee_token = 'x' ORDER BY id LIMIT 21"
        )
        assert "ix_delegations_delegatee_id" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    assert "ix_delegations_delegatee_id" in {
        i["name"] for i in inspect(runtime.engine).get_indexes("delegations")
    }


def sql_plan(runtime: Runtime, statement: str) -> str:
    with runtime.engine.connect() as connection:
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement).all()
    return " | ".join(str(row[-1]) for row in rows)


def _consent_columns(runtime: Runtime) -> list[str]:
    return [c["name"] for c in inspect(runtime.engine).get_columns("consents")]


def _copies(runtime: Runtime, template: str, count: int, *, token: str | None) -> None:
    # ``count`` copies of consent ``template``, pending, each with its own id (newer than
    # any real one) and, without ``token``, each of another borrower.
    columns = _consent_columns(runtime)
    values = []
    for column in columns:
        if column == "id":
            values.append(f"'cns_Z{template[-8:]}' || substr('0000000000000000000' || n, -19)")
        elif column == "principal_token" and token is None:
            values.append("'idt_other' || n")
        else:
            values.append(column)
    with runtime.engine.begin() as connection:
        connection.exec_driver_sql(
            "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?) "
            f"INSERT INTO consents ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} FROM consents, seq WHERE consents.id = ?",
            (count, template),
        )


def test_the_agents_pending_list_is_read_on_the_borrowers_index(
    runtime: Runtime, story: Story
) -> None:
    # Thousands of pending requests of other borrowers and a few of this one: the read goes
    # by (principal_token, status, id), newest first, and stops at its limit -- with no
    # statistics (SQLite's state until something runs ANALYZE) and with them.  Reading
    # (status, expires_at) instead read every pending request of everyone and sorted them
    # (1.7 s at 1,000,000 consents, bench/web.py).
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the plan is SQLite's (PostgreSQL's: docs/benchmarks.md, bench/web.py)")
    _copies(runtime, story.consent_id, 3000, token=None)
    mine = [_request(runtime, story.borrower) for _ in range(3)]
    agent = Principal(story.agent.token, "identity")
    statements: list[tuple[str, object]] = []

    def seen(
        _conn: object, _cursor: object, statement: str, parameters: object, *_: object
    ) -> None:
        if "FROM consents" in statement and "ORDER BY consents.id DESC" in statement:
            statements.append((statement, parameters))

    event.listen(runtime.engine, "before_cursor_execute", seen)
    try:
        with transaction(runtime.read_sessions) as session:
            found = assisted.pending_for_agent(
                session, runtime, agent, story.borrower.token, limit=2
            )
    finally:
        event.remove(runtime.engine, "before_cursor_execute", seen)
    assert [c.consent_id for c in found] == sorted([story.consent_id, *mine], reverse=True)[:2]
    ((statement, parameters),) = statements
    for analysed in (False, True):
        if analysed:
            with runtime.engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
        with runtime.engine.connect() as connection:
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        plan = " | ".join(str(row[-1]) for row in rows)
        assert "USING INDEX ix_consents_principal_status_id" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
