"""The console's acts count in the API's stricter rate-limit groups (export, erasure,
assisted consent, lender retrieval), per address with the API's own budget and per
identity; the one-time-code sign-in counts per identity as well as per address, so a
code's guesses spread over many addresses are counted together.  Every refusal is the
console's HTML 429 page with ``Retry-After`` — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.conftest import GENEROUS_RATE_LIMITS
from tests.integration.consent_world import World
from tests.integration.web.test_borrower_pages import (
    HTML,
    LOOPBACK,
    borrower_token,
    csrf_of,
    post,
    sign_in,
)

from credit_commons.consent import notify
from credit_commons.gateway.ratelimit import LIMITERS, RateLimits
from credit_commons.gateway.route_groups import classify, is_console_page

Limit = Callable[[dict[str, str]], None]


@pytest.fixture
def limit(world: World) -> Iterator[Limit]:
    """Installs generous limits but for the ones given."""
    made: list[RateLimits] = []

    def install(strict: dict[str, str]) -> None:
        limits = {**GENEROUS_RATE_LIMITS, **strict}
        limiter = RateLimits(limits=limits)
        LIMITERS.set(world.rt, limiter)
        made.append(limiter)

    yield install
    for limiter in made:
        limiter.close()


def phone(world: World, address: str = "10.0.0.1") -> TestClient:
    client = TestClient(
        world.http.app, base_url=LOOPBACK, raise_server_exceptions=False, client=(address, 50000)
    )
    client.headers.update(HTML)
    return client


def assert_html_429(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "Too many requests" in answer.text
    assert int(answer.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("path", "group"),
    [
        ("/borrower/data/export.json", "export"),
        ("/borrower/data/export.pdf", "export"),
        ("/borrower/erase", "erase"),
        ("/borrower/erase/final", "erase"),
        ("/agent/consents/cns_x/send", "consent"),
        ("/agent/consents/cns_x/confirm", "consent"),
        ("/borrower/assisted/cns_x", "consent"),
        ("/lender/consents/cns_x/retrieve", "lender-api"),
    ],
)
def test_console_acts_count_in_the_api_group(path: str, group: str) -> None:
    assert classify("POST", path) == group
    assert classify("GET", path) == "web"  # the page that shows the form stays a page
    assert is_console_page(path)  # so a refusal is the HTML page


def test_console_export_shares_the_api_budget_per_address(world: World, limit: Limit) -> None:
    limit({"export.ip": "1/minute"})
    browser = phone(world)
    sign_in(browser, borrower_token(world))
    assert post(browser, "/borrower/data", "/borrower/data/export.json").status_code == 200
    assert_html_429(post(browser, "/borrower/data", "/borrower/data/export.pdf"))
    # The page that offers the export is not the export: it still shows.
    assert browser.get("/borrower/data").status_code == 200


def test_console_export_counts_per_identity(world: World, limit: Limit) -> None:
    limit({"export.client": "1/minute"})
    token = borrower_token(world)
    first, second = phone(world, "10.0.0.1"), phone(world, "10.0.0.2")
    sign_in(first, token)
    sign_in(second, token)
    assert post(first, "/borrower/data", "/borrower/data/export.json").status_code == 200
    # Another address, the same borrower: refused.
    assert_html_429(post(second, "/borrower/data", "/borrower/data/export.json"))


def test_console_erasure_counts_in_the_erase_group(world: World, limit: Limit) -> None:
    limit({"erase.ip": "1/minute"})
    browser = phone(world)
    sign_in(browser, borrower_token(world))
    checked = post(browser, "/borrower/erase", "/borrower/erase", confirm="ERASE")
    assert checked.status_code in (200, 422), checked.text
    page = browser.get("/borrower/erase")
    final = browser.post(
        "/borrower/erase/final",
        data={"csrf_token": csrf_of(page), "confirm": "ERASE"},
        follow_redirects=False,
    )
    assert_html_429(final)
    assert (
        world.http.get(f"/v1/identities/{world.borrower}", headers=world.as_borrower).status_code
        != 404
    )


def test_code_sign_in_counts_per_identity_across_addresses(world: World, limit: Limit) -> None:
    limit({"web-signin.client": "2/minute"})
    one, two, three = (phone(world, f"10.0.1.{n}") for n in (1, 2, 3))
    assert post(one, "/signin/code", "/signin/code", identity=world.borrower).status_code == 303
    assert post(two, "/signin/code", "/signin/code", identity=world.borrower).status_code == 303
    # A third address, the same identity: refused, and no code sent.
    assert_html_429(post(three, "/signin/code", "/signin/code", identity=world.borrower))
    sent = [c for c in notify.read_codes(world.rt, world.borrower) if c.purpose == "signin"]
    assert len(sent) == 2
    # Another identity, from that address, has its own budget (whether it exists or not).
    other = "idt_" + "b" * 22
    assert post(three, "/signin/code", "/signin/code", identity=other).status_code == 303


def test_code_tries_count_per_identity_across_addresses(world: World, limit: Limit) -> None:
    limit({"web-signin.client": "3/minute"})
    one = phone(world, "10.0.2.1")
    assert post(one, "/signin/code", "/signin/code", identity=world.borrower).status_code == 303
    challenge = one.cookies.get("signin-code")
    assert challenge
    # The same challenge tried from other addresses: the tries count against the identity.
    answers = []
    for n in (2, 3, 4):
        guesser = phone(world, f"10.0.2.{n}")
        page = guesser.get("/signin/code/enter")
        guesser.cookies.set("signin-code", challenge)
        answers.append(
            guesser.post("/signin/code/enter", data={"csrf_token": csrf_of(page), "code": "000000"})
        )
    assert [a.status_code for a in answers[:2]] == [401, 401]
    assert_html_429(answers[2])
