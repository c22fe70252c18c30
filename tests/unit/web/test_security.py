"""CSRF token comparison, the ``next`` rule, and the console's cookie flags."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import Request, Response

from credit_commons.core.settings import Environment
from credit_commons.web import safe_next
from credit_commons.web.cookies import cookie_name, relaxed, set_cookie
from credit_commons.web.csrf import CsrfRefused, check_token


def test_a_matching_token_passes() -> None:
    check_token("abc123", "abc123")


@pytest.mark.parametrize(
    ("submitted", "expected"),
    [(None, "abc"), ("", "abc"), ("abc", None), ("abc", ""), ("abd", "abc"), (["abc"], "abc")],
)
def test_a_missing_or_wrong_token_is_refused(submitted: object, expected: str | None) -> None:
    with pytest.raises(CsrfRefused) as refused:
        check_token(submitted, expected)
    assert refused.value.status == 403


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/borrower", "/borrower"),
        ("/borrower/consents?x=1#y", "/borrower/consents?x=1#y"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("borrower", "/"),
        ("/ok\r\nSet-Cookie: x=y", "/"),
        ("/a\\b", "/"),
        ("/" + "a" * 3000, "/"),
    ],
)
def test_next_is_only_a_local_path(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def _request(url: str, env: Environment) -> Request:
    scheme, rest = url.split("://", 1)
    host, _, path = rest.partition("/")
    app = SimpleNamespace(
        state=SimpleNamespace(runtime=SimpleNamespace(settings=SimpleNamespace(env=env)))
    )
    app.state.runtime.settings.is_production = env is Environment.PRODUCTION
    scope = {
        "type": "http",
        "scheme": scheme,
        "server": ("10.9.9.9", 80),  # the URL comes from the Host header
        "path": "/" + path,
        "query_string": b"",
        "headers": [(b"host", host.encode())],
        "app": app,
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("url", "env", "loose"),
    [
        ("http://127.0.0.1:8000/", Environment.DEVELOPMENT, True),
        ("http://localhost:8000/", Environment.DEVELOPMENT, True),
        ("http://[::1]:8000/", Environment.TEST, True),
        ("https://127.0.0.1:8443/", Environment.DEVELOPMENT, False),
        ("http://127.0.0.1:8000/", Environment.PRODUCTION, False),
        ("http://commons.example/", Environment.DEVELOPMENT, False),
        ("http://10.0.0.5/", Environment.DEVELOPMENT, False),
        ("https://commons.example/", Environment.PRODUCTION, False),
    ],
)
def test_secure_is_relaxed_only_on_loopback_outside_production(
    url: str, env: Environment, loose: bool
) -> None:
    request = _request(url, env)
    assert relaxed(request) is loose
    assert cookie_name(request, "session") == ("session" if loose else "__Host-session")
    response = Response()
    set_cookie(request, response, "session", "v", max_age=None)
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header
    assert "SameSite=strict" in header
    assert "Path=/" in header
    assert "Domain" not in header  # __Host- forbids it; we never set one
    assert ("Secure" in header) is not loose
    assert header.startswith("session=" if loose else "__Host-session=")
