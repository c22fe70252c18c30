"""A refused sign-in is tied to its field for assistive technology (WCAG 2.2 SC 3.3.1,
4.1.2): the token or code field says it is invalid (``aria-invalid``) and is described by
the message (``aria-describedby`` naming an element that holds it), and the error summary
links to the field — on ``/signin``, ``/signin/code/enter`` and ``/signin/lender``.  A page
that was not refused marks nothing invalid."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.integration.consent_world import World
from tests.integration.web.test_borrower_pages import HTML, LOOPBACK, csrf_of


class _Page(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str]] = {}
        self.text_of: dict[str, str] = {}
        self.summary_links: list[str] = []
        self._open: list[str] = []
        self._in_summary = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if "id" in values:
            self.by_id[values["id"]] = {"tag": tag, **values}
            if tag == "p":
                self._open.append(values["id"])
                self.text_of[values["id"]] = ""
        if "error-summary" in values.get("class", "").split():
            self._in_summary = 1
        elif self._in_summary and tag == "div":
            self._in_summary += 1
        if self._in_summary and tag == "a":
            self.summary_links.append(values.get("href", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._open:
            self._open.pop()
        if tag == "div" and self._in_summary:
            self._in_summary -= 1

    def handle_data(self, data: str) -> None:
        for open_id in self._open:
            self.text_of[open_id] += data


def assert_tied(answer: httpx.Response, field: str, message: str) -> None:
    assert answer.status_code == 401, answer.text
    page = _Page(answer.text)
    control = page.by_id[f"field-{field}"]
    assert control["tag"] == "input"
    assert control.get("aria-invalid") == "true"
    described = control.get("aria-describedby", "").split()
    assert any(message in page.text_of.get(d, "") for d in described), (described, page.text_of)
    assert page.summary_links == [f"#field-{field}"]


def assert_untouched(answer: httpx.Response, field: str) -> None:
    page = _Page(answer.text)
    assert "aria-invalid" not in page.by_id[f"field-{field}"]
    assert page.summary_links == []


@pytest.fixture
def visitor(world: World) -> TestClient:
    client = TestClient(world.http.app, base_url=LOOPBACK, raise_server_exceptions=False)
    client.headers.update(HTML)
    return client


def _refused(client: TestClient, page_path: str, action: str, **data: str) -> httpx.Response:
    form = client.get(page_path)
    assert_untouched(form, next(iter(data)))
    return client.post(action, data={"csrf_token": csrf_of(form), **data})


def test_a_refused_token_sign_in_is_tied_to_the_token_field(visitor: TestClient) -> None:
    answer = _refused(visitor, "/signin", "/signin", token="cct_" + "x" * 40, role="agent")
    assert_tied(answer, "token", "Sign-in failed. Check what you entered and try again.")


def test_a_refused_lender_sign_in_is_tied_to_the_token_field(visitor: TestClient) -> None:
    answer = _refused(visitor, "/signin/lender", "/signin/lender", token="ccl_not-a-token")
    assert_tied(answer, "token", "Sign-in failed. Check what you entered and try again.")


def test_a_refused_code_is_tied_to_the_code_field(visitor: TestClient) -> None:
    answer = _refused(visitor, "/signin/code/enter", "/signin/code/enter", code="000000")
    assert_tied(answer, "code", "Sign-in failed. Check the code and try again")
