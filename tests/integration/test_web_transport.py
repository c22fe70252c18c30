"""HTTPS on the console, on SQLite and PostgreSQL: ``Strict-Transport-Security`` on every
console response over HTTPS (and in production), none over plain HTTP on the developer's
loopback; the ``lang`` cookie is ``Secure`` whenever the session cookie is; identifiers
isolated left to right on right-to-left pages."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send
from tests.integration.test_web_console import (
    HTML,
    LOOPBACK,
    PUBLIC,
    _client,
    sign_in,
)

from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.identity import service as identity_service
from credit_commons.identity.schemas import IdentityCreate
from credit_commons.runtime import Runtime
from credit_commons.web.headers import HtmlHeadersMiddleware

HSTS = "max-age=31536000"


@pytest.mark.parametrize(
    ("base_url", "secure"),
    [(LOOPBACK, False), (PUBLIC, True), ("http://commons.example", True)],
)
def test_hsts_and_the_language_cookie(
    runtime: Runtime, settings: Settings, base_url: str, secure: bool
) -> None:
    with _client(runtime, settings, base_url) as client:
        https = base_url.startswith("https:")
        for page in (client.get("/", headers=HTML), client.get("/nowhere", headers=HTML)):
            assert page.headers.get("strict-transport-security") == (HSTS if https else None)
        assert "strict-transport-security" not in client.get("/v1/health").headers
        switched = client.get("/lang/hi?next=/", follow_redirects=False)
        cookie = switched.headers["set-cookie"]
        assert cookie.startswith("lang=hi")
        assert ("secure" in cookie.lower()) is secure


async def _page(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"<p>hi</p>"})


def test_production_sends_hsts_even_behind_a_plain_http_hop() -> None:
    for production, expected in ((True, HSTS), (False, None)):
        app = HtmlHeadersMiddleware(_page, production=production)
        client = TestClient(app, base_url="http://commons.example")  # no lifespan
        answer = client.get("/", headers=HTML)
        assert answer.headers.get("strict-transport-security") == expected


def test_identifiers_read_left_to_right_on_urdu_pages(runtime: Runtime, settings: Settings) -> None:
    with transaction(runtime.sessions) as session:
        body = IdentityCreate.model_validate(
            {"roles": ["business"], "profile": {"name": "Asha Devi"}}
        )
        made = identity_service.create_identity(session, runtime, body)
    token = made.access_token
    with _client(runtime, settings, LOOPBACK) as client:
        sign_in(client, token)
        client.cookies.set("lang", "ur")
        page = client.get("/", headers=HTML)
        assert '<html lang="ur" dir="rtl">' in page.text
        assert "<bdi>Asha Devi</bdi>" in page.text  # a name in its own direction
        css = re.search(r'href="(/static/console\.css\?v=[0-9a-f]+)"', page.text)
        assert css is not None
        assert "code, bdi { unicode-bidi: isolate; }" in client.get(css.group(1)).text
