"""The console through the HTTP app, on SQLite and PostgreSQL: security headers, errors as
HTML pages (the API's problem+json unchanged), languages, CSRF, and signing in, out and out
everywhere with a platform token — cookie flags, rotation, refusals recorded as the API
records them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

import httpx
import pytest
from fastapi import Depends
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import declare_probes
from tests.lenders import counted, denials, events

from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.identity import service as identity_service
from credit_commons.identity import subject_of
from credit_commons.identity.auth import issue_admin_token
from credit_commons.identity.schemas import IdentityCreate
from credit_commons.runtime import Runtime
from credit_commons.web import WebSession, page_router, requires
from credit_commons.web.headers import CSP
from credit_commons.web.models import WebSessionRow

LOOPBACK = "http://127.0.0.1:8000"
PUBLIC = "https://commons.example"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

probe = page_router(prefix="/borrower")


@probe.get("/probe")
def _probe(me: Annotated[WebSession, Depends(requires("borrower"))]) -> str:
    return me.subject


def _client(runtime: Runtime, settings: Settings, base_url: str) -> TestClient:
    app = create_app(settings, runtime=runtime)
    app.include_router(probe)
    declare_probes(app)
    return TestClient(app, base_url=base_url, raise_server_exceptions=False)


@pytest.fixture
def browser(runtime: Runtime, settings: Settings) -> Iterator[TestClient]:
    """A browser on the developer's machine (http://127.0.0.1)."""
    with _client(runtime, settings, LOOPBACK) as client:
        yield client


def _identity(runtime: Runtime, roles: list[str]) -> tuple[str, str]:
    with transaction(runtime.sessions) as session:
        body = IdentityCreate.model_validate({"roles": roles, "profile": {"name": "Asha"}})
        made = identity_service.create_identity(session, runtime, body)
    return made.identity_token, made.access_token


@pytest.fixture
def identity_token(runtime: Runtime) -> tuple[str, str]:
    """A new identity's ``idt_…`` and its access token ``cct_…``."""
    return _identity(runtime, ["business"])


@pytest.fixture
def agent_token(runtime: Runtime) -> tuple[str, str]:
    """A new identity holding the field-agent role: ``idt_…`` and ``cct_…``."""
    return _identity(runtime, ["business", "field_agent"])


def csrf_of(response: httpx.Response) -> str:
    found = _CSRF.search(response.text)
    assert found, response.text
    return found.group(1)


def sign_in(
    client: TestClient, token: str, role: str = "borrower", next_path: str = "/"
) -> httpx.Response:
    page = client.get("/signin", headers=HTML)
    return client.post(
        "/signin",
        data={"csrf_token": csrf_of(page), "token": token, "role": role, "next": next_path},
        headers=HTML,
        follow_redirects=False,
    )


def session_rows(runtime: Runtime) -> list[WebSessionRow]:
    with transaction(runtime.read_sessions) as session:
        return list(session.scalars(select(WebSessionRow)).all())


def assert_secure_html(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert "<script>" not in response.text
    assert " style=" not in response.text


def test_the_home_page(browser: TestClient) -> None:
    page = browser.get("/", headers=HTML)
    assert page.status_code == 200
    assert_secure_html(page)
    assert '<html lang="en" dir="ltr">' in page.text
    assert len(page.content) <= 100_000
    for link in (
        'href="/borrower"',
        'href="/agent"',
        'href="/lender"',
        'href="/issuer"',
        'href="/audit"',
    ):
        assert link in page.text
    assert 'href="/lang/ur?next=/"' in page.text
    assert 'href="#main"' in page.text
    assert "/openapi.json" not in page.text
    css = browser.get(re.search(r'href="(/static/console\.css\?v=[0-9a-f]+)"', page.text).group(1))  # type: ignore[union-attr]
    assert css.status_code == 200
    assert css.headers["cache-control"] == "public, max-age=86400"
    assert css.headers["x-content-type-options"] == "nosniff"
    assert css.headers["content-type"].startswith("text/css")
    # The API's own HTML page (Swagger UI, with its inline script) keeps its headers.
    assert "content-security-policy" not in browser.get("/docs", headers=HTML).headers
    paths = browser.get("/openapi.json").json()["paths"]
    assert not {"/", "/signin", "/signout"} & set(paths)


def test_languages(browser: TestClient) -> None:
    urdu = browser.get("/", headers={**HTML, "Accept-Language": "ur-PK,ur;q=0.9"})
    assert '<html lang="ur" dir="rtl">' in urdu.text
    assert "کریڈٹ کامنز" in urdu.text
    switched = browser.get("/lang/hi?next=/signin", follow_redirects=False)
    assert switched.status_code == 303
    assert switched.headers["location"] == "/signin"
    assert "lang=hi" in switched.headers["set-cookie"]
    hindi = browser.get("/signin", headers={**HTML, "Accept-Language": "ur"})
    assert '<html lang="hi" dir="ltr">' in hindi.text  # the cookie wins
    assert "साइन इन करें" in hindi.text
    away = browser.get("/lang/ur?next=https://evil.example/", follow_redirects=False)
    assert away.headers["location"] == "/"
    unknown = browser.get("/lang/xx?next=/", follow_redirects=False)
    assert "set-cookie" not in unknown.headers


def test_errors_are_html_pages_and_the_api_stays_problem_json(
    browser: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = browser.get("/borrower/no-such-page", headers=HTML)
    assert missing.status_code == 404
    assert_secure_html(missing)
    assert "Page not found" in missing.text
    api = browser.get("/v1/no-such-thing", headers=HTML)
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    wrong_method = browser.put("/signin", headers=HTML)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"].startswith("text/html")

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret detail /etc/passwd")

    monkeypatch.setattr("credit_commons.web.home.render", broken)
    failed = browser.get("/", headers=HTML)
    assert failed.status_code == 500
    assert_secure_html(failed)
    assert "Something went wrong" in failed.text
    assert "secret detail" not in failed.text
    assert "Traceback" not in failed.text


def test_a_post_without_the_csrf_token_is_refused_and_does_nothing(
    browser: TestClient, runtime: Runtime, identity_token: tuple[str, str]
) -> None:
    _, token = identity_token
    browser.get("/signin", headers=HTML)  # the csrf cookie is set
    for data in (
        {"token": token, "role": "borrower"},
        {"token": token, "role": "borrower", "csrf_token": "p1:forged"},
    ):
        refused = browser.post("/signin", data=data, headers=HTML, follow_redirects=False)
        assert refused.status_code == 403
        assert_secure_html(refused)
        assert "Not permitted" in refused.text
    # A token of another visitor (their cookie is not ours) is refused too.
    with _client(runtime, runtime.settings, LOOPBACK) as other:
        theirs = csrf_of(other.get("/signin", headers=HTML))
    stolen = browser.post(
        "/signin", data={"token": token, "role": "borrower", "csrf_token": theirs}, headers=HTML
    )
    assert stolen.status_code == 403
    assert session_rows(runtime) == []
    assert counted(runtime) == []


def test_sign_in_on_loopback_sets_a_relaxed_session_cookie(
    browser: TestClient, runtime: Runtime, identity_token: tuple[str, str]
) -> None:
    subject, token = identity_token
    signed = sign_in(browser, token, next_path="/borrower/probe?x=1")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/borrower/probe?x=1"
    cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # loopback, not production
    assert browser.get("/borrower/probe").text == subject
    home = browser.get("/", headers=HTML)
    assert "Signed in as" in home.text
    assert "You are signed in." in home.text  # the flash, shown once
    assert "You are signed in." not in browser.get("/", headers=HTML).text
    rows = session_rows(runtime)
    assert [(r.role, r.subject) for r in rows] == [("borrower", subject)]


def test_sign_in_behind_https_uses_the_host_prefix(
    runtime: Runtime, settings: Settings, identity_token: tuple[str, str]
) -> None:
    _, token = identity_token
    with _client(runtime, settings, PUBLIC) as client:
        signed = sign_in(client, token)
        assert signed.status_code == 303
        cookie = next(c for c in signed.headers.get_list("set-cookie") if "-session=" in c)
        assert cookie.startswith("__Host-session=")
        assert "Secure" in cookie
        assert "Domain" not in cookie
        assert "Signed in as" in client.get("/", headers=HTML).text


def test_sign_in_rotates_the_session(
    browser: TestClient, runtime: Runtime, identity_token: tuple[str, str]
) -> None:
    _, token = identity_token
    sign_in(browser, token)
    first = browser.cookies.get("session")
    assert first
    sign_in(browser, token)
    second = browser.cookies.get("session")
    assert second
    assert second != first
    assert len(session_rows(runtime)) == 1  # the earlier session ended
    with _client(runtime, runtime.settings, LOOPBACK) as thief:
        thief.cookies.set("session", first)
        assert "Signed in as" not in thief.get("/", headers=HTML).text


def test_a_refused_sign_in_says_nothing_about_why_and_is_recorded(
    browser: TestClient, runtime: Runtime, identity_token: tuple[str, str]
) -> None:
    subject, token = identity_token
    unknown = sign_in(browser, "cct_" + "x" * 40)
    wrong_role = sign_in(browser, token, role="issuer")
    not_a_token = sign_in(browser, "hello")
    for refused in (unknown, wrong_role, not_a_token):
        assert refused.status_code == 401
        assert_secure_html(refused)
        assert "Sign-in failed. Check what you entered and try again." in refused.text
    strip = lambda r: _CSRF.sub("", r.text)  # noqa: E731
    assert strip(unknown) == strip(wrong_role) == strip(not_a_token)
    assert session_rows(runtime) == []
    # The token that names an identity is in that borrower's history; the others counted.
    recorded = list(events(runtime, "access.denied"))
    assert [
        (e.subject, d["operation"], d["reason"])
        for e, d in zip(recorded, denials(runtime), strict=True)
    ] == [(subject_of(runtime, subject), "web.signin", "auth.role_mismatch")]
    assert [(c["operation"], c["reason"]) for c in counted(runtime)] == [
        ("web.signin", "auth.token_invalid"),
        ("web.signin", "auth.token_invalid"),
    ]


def test_only_a_field_agent_signs_in_as_an_agent(
    browser: TestClient,
    runtime: Runtime,
    identity_token: tuple[str, str],
    agent_token: tuple[str, str],
) -> None:
    subject, token = identity_token  # roles: business only
    refused = sign_in(browser, token, role="agent")
    unknown = sign_in(browser, "cct_" + "x" * 40, role="agent")
    for answer in (refused, unknown):
        assert answer.status_code == 401
        assert "Sign-in failed. Check what you entered and try again." in answer.text
    # The same page as a token that names nobody: nothing tells the identity exists.
    strip = lambda r: _CSRF.sub("", r.text)  # noqa: E731
    assert strip(refused) == strip(unknown)
    assert session_rows(runtime) == []
    recorded = list(events(runtime, "access.denied"))
    assert [
        (e.subject, d["operation"], d["reason"])
        for e, d in zip(recorded, denials(runtime), strict=True)
    ] == [(subject_of(runtime, subject), "web.signin", "auth.role_mismatch")]
    # The same identity still signs in as a borrower; a field agent signs in as an agent.
    assert sign_in(browser, token, role="borrower").status_code == 303
    agent, agent_cct = agent_token
    assert sign_in(browser, agent_cct, role="agent").status_code == 303
    assert [(r.role, r.subject) for r in session_rows(runtime)][-1] == ("agent", agent)


def test_an_administrator_signs_in_to_the_issuer_desk(
    browser: TestClient, runtime: Runtime
) -> None:
    with transaction(runtime.sessions) as session:
        token, _ = issue_admin_token(session, runtime, "desk-1")
    assert sign_in(browser, token, role="borrower").status_code == 401
    assert sign_in(browser, token, role="issuer").status_code == 303
    assert [(r.role, r.subject, r.display_name) for r in session_rows(runtime)] == [
        ("issuer", "admin:desk-1", "desk-1")
    ]
    assert browser.get("/borrower/probe", headers=HTML).status_code == 403  # wrong role


def test_a_borrower_or_agent_is_called_by_their_registered_name(
    runtime: Runtime, settings: Settings, agent_token: tuple[str, str]
) -> None:
    subject, token = agent_token
    for role in ("borrower", "agent"):
        with _client(runtime, settings, LOOPBACK) as client:
            assert sign_in(client, token, role=role).status_code == 303
            assert "Signed in as <bdi>Asha</bdi>" in client.get("/", headers=HTML).text
    assert [(r.role, r.subject, r.display_name) for r in session_rows(runtime)] == [
        ("borrower", subject, "Asha"),
        ("agent", subject, "Asha"),
    ]


def test_an_identity_without_a_readable_name_is_called_by_its_token(
    browser: TestClient,
    runtime: Runtime,
    identity_token: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # display_name answers None for a profile the vault can no longer open.
    subject, token = identity_token
    monkeypatch.setattr(identity_service, "display_name", lambda *_args: None)
    assert sign_in(browser, token).status_code == 303
    assert [r.display_name for r in session_rows(runtime)] == [subject[:12] + "…"]
    assert f"Signed in as <bdi>{subject[:12]}…</bdi>" in browser.get("/", headers=HTML).text


def test_a_page_that_needs_a_session_sends_to_sign_in(browser: TestClient) -> None:
    sent = browser.get("/borrower/probe?tab=2", follow_redirects=False)
    assert sent.status_code == 303
    assert sent.headers["location"] == "/signin?next=/borrower/probe%3Ftab%3D2"
    page = browser.get(sent.headers["location"], headers=HTML)
    assert 'name="next" value="/borrower/probe?tab=2"' in page.text


def test_sign_out_and_sign_out_everywhere(
    runtime: Runtime, settings: Settings, identity_token: tuple[str, str]
) -> None:
    _, token = identity_token
    with (
        _client(runtime, settings, LOOPBACK) as phone,
        _client(runtime, settings, LOOPBACK) as laptop,
        _client(runtime, settings, LOOPBACK) as kiosk,
    ):
        for client in (phone, laptop, kiosk):
            sign_in(client, token)
        assert len(session_rows(runtime)) == 3
        # Signing out is a form: without the token it does nothing.
        assert kiosk.post("/signout", headers=HTML).status_code == 403
        out = kiosk.post(
            "/signout",
            data={"csrf_token": csrf_of(kiosk.get("/", headers=HTML))},
            headers=HTML,
            follow_redirects=False,
        )
        assert out.status_code == 303
        assert len(session_rows(runtime)) == 2
        assert "Signed in as" not in kiosk.get("/", headers=HTML).text
        everywhere = phone.post(
            "/signout/everywhere",
            data={"csrf_token": csrf_of(phone.get("/signin", headers=HTML))},
            headers=HTML,
            follow_redirects=False,
        )
        assert everywhere.status_code == 303
        assert session_rows(runtime) == []
        assert "Signed in as" not in laptop.get("/", headers=HTML).text
        assert laptop.get("/borrower/probe", follow_redirects=False).status_code == 303
