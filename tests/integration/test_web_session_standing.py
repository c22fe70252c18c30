"""A console session lasts only as long as its sign-in stands, on SQLite and PostgreSQL: an
erasure (through the API's service or the CLI's runtime) deletes the subject's sessions and
sign-in codes, and each request checks again the platform token a session was made with —
removed or expired, or its identity erased, the session ends at the next page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Annotated, cast

import pytest
import typer
from fastapi import Depends
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update
from tests.conftest import declare_probes
from tests.integration.test_web_console import HTML, LOOPBACK, csrf_of, session_rows, sign_in

from credit_commons.cli import support
from credit_commons.core.clock import FixedClock, utc
from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.identity import Principal
from credit_commons.identity import service as identity_service
from credit_commons.identity.auth import issue_admin_token
from credit_commons.identity.models import AccessTokenRow
from credit_commons.identity.schemas import IdentityCreate
from credit_commons.privacy.erasure import erase_subject
from credit_commons.runtime import Runtime
from credit_commons.web import WebSession, page_router, requires
from credit_commons.web.borrower_models import SignInCodeRow
from credit_commons.web.models import WebSessionRow

probe = page_router()
OPERATOR = Principal("admin:ops", "admin")


@probe.get("/borrower/standing")
def _borrower(me: Annotated[WebSession, Depends(requires("borrower", "agent"))]) -> str:
    return me.subject


POSTED: list[str] = []


@probe.post("/borrower/standing")
def _post(me: Annotated[WebSession, Depends(requires("borrower"))]) -> str:
    POSTED.append(me.subject)
    return me.subject


@probe.get("/issuer/standing")
def _issuer(me: Annotated[WebSession, Depends(requires("issuer"))]) -> str:
    return me.subject


@pytest.fixture
def browser(runtime: Runtime, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, runtime=runtime)
    app.include_router(probe)
    declare_probes(app)
    with TestClient(app, base_url=LOOPBACK, raise_server_exceptions=False) as client:
        yield client


def _identity(rt: Runtime) -> tuple[str, str]:
    with transaction(rt.sessions) as session:
        body = IdentityCreate.model_validate({"roles": ["business"], "profile": {"name": "Asha"}})
        made = identity_service.create_identity(session, rt, body)
    return made.identity_token, made.access_token


def _codes(rt: Runtime, subject: str) -> int:
    with transaction(rt.read_sessions) as session:
        query = select(func.count()).select_from(SignInCodeRow)
        return int(session.scalar(query.where(SignInCodeRow.subject == subject)) or 0)


def test_an_erasure_ends_the_subjects_sessions_and_codes(
    runtime: Runtime, browser: TestClient
) -> None:
    erased, token = _identity(runtime)
    kept, other = _identity(runtime)
    assert sign_in(browser, token, next_path="/borrower/standing").status_code == 303
    assert browser.get("/borrower/standing").text == erased
    now = runtime.clock.now()
    with transaction(runtime.sessions) as session:
        for subject in (erased, kept):
            session.add(
                SignInCodeRow(
                    id_hash=subject.ljust(64, "0")[:64],
                    subject=subject,
                    code_hash="0" * 64,
                    attempts=0,
                    created_at=now,
                    expires_at=now + timedelta(minutes=10),
                )
            )
    with TestClient(browser.app, base_url=LOOPBACK) as other_browser:
        sign_in(other_browser, other)
        assert [row.subject for row in session_rows(runtime)].count(kept) == 1
        with transaction(runtime.sessions) as session:
            erase_subject(session, runtime, OPERATOR, erased)
        assert [row.subject for row in session_rows(runtime)] == [kept]
        assert (_codes(runtime, erased), _codes(runtime, kept)) == (0, 1)
        sent = browser.get("/borrower/standing", follow_redirects=False)
        assert sent.status_code == 303
        assert sent.headers["location"].startswith("/signin?next=")
        assert "Signed in as" not in browser.get("/", headers=HTML).text
        assert other_browser.get("/borrower/standing").text == kept


def test_a_cli_runtime_erasure_ends_the_sessions(runtime: Runtime, browser: TestClient) -> None:
    """``commons`` commands build their runtime with the console's share installed."""
    subject, token = _identity(runtime)
    sign_in(browser, token)
    assert len(session_rows(runtime)) == 1
    context = cast("typer.Context", SimpleNamespace(obj=runtime.settings))
    with support.runtime(context) as cli_runtime, transaction(cli_runtime.sessions) as session:
        erase_subject(session, cli_runtime, OPERATOR, subject)
    assert session_rows(runtime) == []


def test_each_request_checks_the_token_again(runtime: Runtime, browser: TestClient) -> None:
    subject, token = _identity(runtime)
    sign_in(browser, token, next_path="/borrower/standing")
    rows = session_rows(runtime)
    assert [row.token_hash is not None for row in rows] == [True]
    assert token not in (rows[0].token_hash, rows[0].id_hash, rows[0].subject)
    assert browser.get("/borrower/standing").status_code == 200
    # The token expires (or is pruned): the session ends at the next request.
    with transaction(runtime.sessions) as session:
        session.execute(
            update(AccessTokenRow)
            .where(AccessTokenRow.principal == subject)
            .values(expires_at=runtime.clock.now() - timedelta(seconds=1))
        )
    assert browser.get("/borrower/standing", follow_redirects=False).status_code == 303
    assert session_rows(runtime) == []


def test_a_removed_administrator_token_ends_the_issuer_session(
    runtime: Runtime, browser: TestClient
) -> None:
    with transaction(runtime.sessions) as session:
        token, _ = issue_admin_token(session, runtime, "desk")
    assert sign_in(browser, token, role="issuer").status_code == 303
    assert browser.get("/issuer/standing").text == "admin:desk"
    with transaction(runtime.sessions) as session:
        session.execute(delete(AccessTokenRow).where(AccessTokenRow.principal == "admin:desk"))
    assert browser.get("/issuer/standing", follow_redirects=False).status_code == 303
    assert session_rows(runtime) == []
    page = browser.get("/signin", headers=HTML)
    assert csrf_of(page)


class _CountingWrites:
    """The runtime's writer sessionmaker, counting the units of work opened on it."""

    def __init__(self, inner: object) -> None:
        self.inner, self.opened = inner, 0

    def __call__(self) -> object:
        self.opened += 1
        return self.inner()  # type: ignore[operator]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_page_view_takes_no_write_lock(runtime: Runtime, browser: TestClient) -> None:
    """A fresh session is read in a read-only unit of work; it writes only to refresh its
    last-seen time (once a minute) or to end; a stranger's random cookie writes nothing."""
    clock = FixedClock(runtime.clock.now())
    runtime.clock = clock
    subject, token = _identity(runtime)
    sign_in(browser, token)
    stranger = TestClient(browser.app, base_url=LOOPBACK)
    stranger.cookies.set("session", "x" * 43)
    writes = _CountingWrites(runtime.sessions)
    runtime.sessions = writes  # type: ignore[assignment]
    try:
        for _ in range(3):
            assert browser.get("/borrower/standing").text == subject
        assert writes.opened == 0
        clock.advance(timedelta(minutes=1))
        assert browser.get("/borrower/standing").text == subject
        assert writes.opened == 1  # last_seen_at refreshed
        assert browser.get("/borrower/standing").text == subject
        assert writes.opened == 1
        assert stranger.get("/borrower/standing", follow_redirects=False).status_code == 303
        assert writes.opened == 1
    finally:
        runtime.sessions = writes.inner  # type: ignore[assignment]
    [row] = session_rows(runtime)
    assert utc(row.last_seen_at) == clock.now()


def test_a_form_sent_after_the_session_ended_goes_to_sign_in(
    runtime: Runtime, browser: TestClient
) -> None:
    """Not the 403 of a wrong CSRF token: the sign-in page, back to the page the form was
    on, with a flash saying why — and nothing done."""
    _, token = _identity(runtime)
    sign_in(browser, token)
    csrf = csrf_of(browser.get("/signin", headers=HTML))
    with transaction(runtime.sessions) as session:
        session.execute(delete(WebSessionRow))  # ended (expired, or signed out elsewhere)
    for data, back in (
        ({"csrf_token": csrf}, "/borrower/standing"),
        ({"next": "/borrower?tab=2"}, "/borrower%3Ftab%3D2"),
        ({"next": "https://evil.example/"}, "/"),
    ):
        browser.cookies.set("session", browser.cookies.get("session") or "x" * 43)
        sent = browser.post("/borrower/standing", data=data, headers=HTML, follow_redirects=False)
        assert sent.status_code == 303
        assert sent.headers["location"] == f"/signin?next={back}"
        assert 'session=""' in sent.headers["set-cookie"]  # the stale cookie expired
    assert POSTED == []
    page = browser.get("/signin", headers=HTML)
    assert "Your session has ended. Please sign in again." in page.text
    # With no session cookie at all, a form without the token is still refused.
    browser.cookies.clear()
    assert browser.post("/borrower/standing", headers=HTML).status_code == 403
