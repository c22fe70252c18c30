"""Refusals decided before routing, on a console page: the size limits' 431 and 413 and
admission's 503 answer the console's HTML page of the same status (rendered at start-up,
in the visitor's language, with the security headers and ``Retry-After`` where it
applies), while the API's paths keep their problem+json."""

from __future__ import annotations

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from starlette.types import Message, Receive, Scope, Send

from credit_commons.core.settings import Settings
from credit_commons.gateway.admission import Admission, AdmissionMiddleware
from credit_commons.gateway.route_groups import CLASS_OF_GROUP, is_console_page
from credit_commons.web.headers import CSP

MiB = 1024 * 1024
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def assert_console_page(response: httpx.Response, status: int, lang: str = "en") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["cache-control"] == "no-store"
    assert f'<html lang="{lang}"' in response.text
    assert int(response.headers["content-length"]) == len(response.content)


def test_console_pages_are_told_from_the_api() -> None:
    for path in (
        "/",
        "/signin",
        "/signin/code",
        "/borrower/consents",
        "/agent",
        "/lender/x",
        "/issuer/credentials",
        "/audit/entry",
        "/lang/hi",
        "/signout",
    ):
        assert is_console_page(path), path
    for path in (
        "/v1/identities",
        "/healthz",
        "/docs",
        "/static/console.css",
        "/oauth/token",
        "/borrowers",
        "/signinx",
    ):
        assert not is_console_page(path), path


@pytest.mark.parametrize("path", ["/signin", "/borrower/consents", "/audit"])
def test_over_long_headers_on_a_console_page_are_its_431_page(
    client: TestClient, path: str
) -> None:
    response = client.get(path, headers={**HTML, "X-Long": "a" * 9000})
    assert_console_page(response, 431)
    assert "The request could not be completed" in response.text
    hindi = client.get(path, headers={**HTML, "Accept-Language": "hi", "X-Long": "a" * 9000})
    assert_console_page(hindi, 431, "hi")
    assert hindi.text != response.text
    # The API's paths are unchanged.
    api = client.get("/v1/log/checkpoint", headers={**HTML, "X-Long": "a" * 9000})
    assert api.status_code == 431
    assert api.headers["content-type"] == "application/problem+json"


def test_an_over_large_sign_in_form_is_its_413_page(client: TestClient) -> None:
    body = b"token=" + b"a" * (2 * MiB)
    response = client.post(
        "/signin",
        content=body,
        headers={**HTML, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_console_page(response, 413)
    api = client.post("/v1/identities", content=body, headers={"Content-Type": "application/json"})
    assert api.status_code == 413
    assert api.headers["content-type"] == "application/problem+json"


async def _hold(scope: Scope, receive: Receive, send: Send) -> None:
    del scope, receive, send
    await anyio.sleep_forever()


def _request(path: str) -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"accept-language", b"ur"), (b"accept", b"text/html")],
        "state": {},
    }


def test_a_console_page_refused_at_admission_is_its_503_page(settings: Settings) -> None:
    admission = Admission(
        settings.model_copy(update={"admission_queue": 0}), "sqlite", CollectorRegistry()
    )
    middleware = AdmissionMiddleware(_hold, admission)

    async def scenario() -> dict[str, list[Message]]:
        answers: dict[str, list[Message]] = {}

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def refused(path: str) -> None:
            sent: list[Message] = []

            async def send(message: Message) -> None:
                sent.append(message)

            await middleware(_request(path), receive, send)
            answers[path] = sent

        async with anyio.create_task_group() as tasks:
            # Fill the class of the console's pages (its queue is 0): the next is refused.
            limiter = admission.limiters[CLASS_OF_GROUP["web"]]
            for _ in range(limiter.capacity):
                tasks.start_soon(middleware, _request("/"), receive, _ignore)
            await anyio.wait_all_tasks_blocked()
            await refused("/borrower/consents")
            tasks.cancel_scope.cancel()
        return answers

    sent = anyio.run(scenario)["/borrower/consents"]
    start, body = sent
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    assert start["status"] == 503
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["retry-after"] == "1"
    assert headers["content-security-policy"] == CSP
    assert '<html lang="ur" dir="rtl">' in body["body"].decode()


async def _ignore(message: Message) -> None:
    del message
