"""No identity token (``idt_…``) in any URL the console hands out: a crawl of every page a
signed-in borrower, field agent, lender and issuer desk can reach by following links (and
the forms that move them on: the agent's search for a borrower, the desk's search by
borrower) finds none in an ``href``, ``src``, ``action`` or ``Location`` — tokens travel
only in POST bodies and the session (issue 17).  On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urljoin, urlsplit

import httpx
from fastapi.testclient import TestClient
from tests.integration.consent_world import World
from tests.integration.web.test_borrower_pages import HTML, LOOPBACK, borrower_token, csrf_of
from tests.integration.web.test_lender_pages import console_token

from credit_commons.core.db import transaction
from credit_commons.identity.auth import issue_admin_token

_URLS = re.compile(r'\b(?:href|src|action)="([^"]*)"')
_SKIP = ("/signout", "/lang/", "/static/", "/v1/", "/docs")
MAX_PAGES = 150
"""A bound on each crawl (the pages of one visitor are far fewer)."""


def _client(world: World) -> TestClient:
    client = TestClient(world.http.app, base_url=LOOPBACK, raise_server_exceptions=False)
    client.headers.update(HTML)
    return client


def _check(answer: httpx.Response, where: str) -> list[str]:
    """The URLs of ``answer`` (asserting none carries an identity token)."""
    location = answer.headers.get("location", "")
    assert "idt_" not in location, (where, location)
    if not answer.headers.get("content-type", "").startswith("text/html"):
        return []
    urls = _URLS.findall(answer.text)
    leaking = [u for u in urls if "idt_" in u]
    assert not leaking, (where, leaking)
    return urls


def crawl(client: TestClient, start: str, *answers: httpx.Response) -> set[str]:
    """Every page reachable from ``start`` by links, a bounded breadth-first walk; the
    pages seen.  ``answers`` (form posts made before) are checked too."""
    seen: set[str] = set()
    queue = deque([start])

    def follow(answer: httpx.Response, path: str) -> None:
        for url in _check(answer, path):
            target = urlsplit(urljoin(LOOPBACK + path, url.replace("&amp;", "&")))
            if target.netloc != urlsplit(LOOPBACK).netloc or target.path.startswith(_SKIP):
                continue
            queue.append(target.path + (f"?{target.query}" if target.query else ""))
        if "location" in answer.headers:
            queue.append(answer.headers["location"])

    for answer in answers:
        follow(answer, answer.url.path)
    while queue and len(seen) < MAX_PAGES:
        path = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        follow(client.get(path, follow_redirects=False), path)
    assert len(seen) < MAX_PAGES, "the crawl did not end"
    return seen


def _sign_in(client: TestClient, token: str, role: str) -> None:
    page = client.get("/signin")
    done = client.post(
        "/signin",
        data={"csrf_token": csrf_of(page), "token": token, "role": role, "next": "/"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text


def _post(client: TestClient, page: str, action: str, **data: str) -> httpx.Response:
    form = client.get(page)
    return client.post(action, data={"csrf_token": csrf_of(form), **data}, follow_redirects=False)


def test_a_borrower_reaches_no_url_with_a_token(world: World) -> None:
    world.consent(approve=False)
    world.consent(approve=True)
    borrower = _client(world)
    _sign_in(borrower, borrower_token(world), "borrower")
    seen = crawl(borrower, "/borrower")
    assert {"/borrower/consents", "/borrower/history", "/borrower/data"} <= seen


def test_an_agent_reaches_no_url_with_a_token(world: World) -> None:
    world.consent(approve=False)
    made = world.http.post(
        "/v1/identities", json={"roles": ["field_agent"], "profile": {"name": "Agent"}}
    ).json()
    agent, as_agent = made["identity_token"], {"Authorization": f"Bearer {made['access_token']}"}
    offered = world.http.post(
        f"/v1/identities/{world.borrower}/delegations",
        json={
            "delegatee_token": agent,
            "type": "field_agent_assist",
            "permissions": ["assist:consent"],
        },
        headers=world.as_borrower,
    )
    assert offered.status_code == 201, offered.text
    accepted = world.http.post(
        f"/v1/identities/{agent}/delegations/{offered.json()['id']}/accept", headers=as_agent
    )
    assert accepted.status_code == 200, accepted.text
    client = _client(world)
    _sign_in(client, made["access_token"], "agent")
    found = _post(client, "/agent", "/agent/find", token=world.borrower)
    assert found.status_code == 303
    seen = crawl(client, "/agent", found)
    assert any(p.startswith("/agent/borrowers/dlg_") for p in seen), seen
    assert any(p.startswith("/agent/consents/") for p in seen), seen


def test_a_lender_reaches_no_url_with_a_token(world: World) -> None:
    world.consent(approve=True)
    lender = _client(world)
    page = lender.get("/signin/lender")
    done = lender.post(
        "/signin/lender",
        data={"csrf_token": csrf_of(page), "token": console_token(world), "next": "/lender"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    seen = crawl(lender, "/lender")
    assert any(p.startswith("/lender/consents/") for p in seen), seen


def test_the_issuer_desk_reaches_no_url_with_a_token(world: World) -> None:
    with transaction(world.rt.sessions) as session:
        token, _ = issue_admin_token(session, world.rt, "desk-1")
    desk = _client(world)
    _sign_in(desk, token, "issuer")
    found = _post(desk, "/issuer", "/issuer/credentials", q=world.borrower)
    assert found.status_code == 200, found.text
    credential = re.search(r'href="(/issuer/credentials/crd_[0-9A-Z]{26})"', found.text)
    assert credential is not None, found.text
    seen = crawl(desk, "/issuer", found)
    assert credential.group(1) in seen
