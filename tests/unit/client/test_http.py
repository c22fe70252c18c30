"""The lender client's HTTP layer: which platform URLs it accepts, and the platform's
answers turned into typed errors carrying the problem+json (fakes, no network)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from credit_commons.client import (
    ApiConflict,
    ApiError,
    ApiForbidden,
    ApiInvalid,
    ApiNotFound,
    ApiRateLimited,
    ApiUnavailable,
    PlatformUrlInvalid,
)
from credit_commons.client.http import PlatformFetcher, PlatformHttp, platform_url
from credit_commons.core.errors import ExitCode
from credit_commons.core.net import UnsafeUrl


@pytest.mark.parametrize(
    "url",
    [
        "https://commons.example",
        "https://commons.example:8443/base/",
        "http://127.0.0.1:8000",
        "http://[::1]:8000",
        "http://localhost:8000",
    ],
)
def test_accepted_platform_urls(url: str) -> None:
    assert platform_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://commons.example",  # http beyond loopback
        "http://10.0.0.5:8000",
        "ftp://commons.example",
        "https://user:pw@commons.example",
        "https://commons.example/?q=1",
        "https://commons.example/#f",
        "https://commons.example:99999",
        "commons.example",
    ],
)
def test_refused_platform_urls(url: str) -> None:
    with pytest.raises(PlatformUrlInvalid):
        platform_url(url)


def _answering(status: int, body: Any, headers: dict[str, str] | None = None) -> PlatformHttp:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return PlatformHttp("https://commons.example", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "error", "exit_code"),
    [
        (400, ApiInvalid, ExitCode.VALIDATION),
        (422, ApiInvalid, ExitCode.VALIDATION),
        (401, ApiForbidden, ExitCode.FORBIDDEN),
        (403, ApiForbidden, ExitCode.FORBIDDEN),
        (404, ApiNotFound, ExitCode.NOT_FOUND),
        (409, ApiConflict, ExitCode.CONFLICT),
        (503, ApiUnavailable, ExitCode.UNAVAILABLE),
    ],
)
def test_problems_become_typed_errors(status: int, error: type[ApiError], exit_code: int) -> None:
    problem = {"type": "t", "title": "T", "status": status, "code": "x.y", "detail": "why"}
    with pytest.raises(error) as raised:
        _answering(status, problem).request("GET", "/anything")
    assert raised.value.code == "x.y"
    assert raised.value.detail == "why"
    assert raised.value.exit_code == exit_code
    assert raised.value.problem() == problem


def test_rate_limits_and_oauth_errors() -> None:
    with pytest.raises(ApiRateLimited) as limited:
        _answering(429, {"code": "request.rate_limited"}, {"Retry-After": "7"}).request("GET", "/")
    assert limited.value.retry_after == 7
    # A Retry-After of digits int() refuses ("²" is a digit to str.isdigit) is no number.
    with pytest.raises(ApiRateLimited) as odd:
        _answering(
            429, {"code": "request.rate_limited"}, {"Retry-After": "²".encode("latin-1")}
        ).request("GET", "/")
    assert odd.value.retry_after is None
    oauth = {"error": "invalid_client", "error_description": "client authentication failed"}
    with pytest.raises(ApiForbidden) as refused:
        _answering(401, oauth).request("POST", "/oauth/token")
    assert refused.value.code == "oauth.invalid_client"
    assert refused.value.detail == "client authentication failed"


def test_unreachable_and_non_json() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = PlatformHttp("https://commons.example", transport=httpx.MockTransport(down))
    with pytest.raises(ApiUnavailable) as unreachable:
        http.request("GET", "/")
    assert unreachable.value.code == "lender.platform_unreachable"

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>")

    http = PlatformHttp("https://commons.example", transport=httpx.MockTransport(html))
    with pytest.raises(ApiUnavailable):
        http.request("GET", "/")


def test_the_fetcher_trusts_only_the_platforms_origin() -> None:
    fetcher = PlatformFetcher("http://127.0.0.1:8000")
    try:
        fetcher.check_url("http://127.0.0.1:8000/status-lists/sl_1")
        for url in (
            "http://127.0.0.1:8001/status-lists/sl_1",  # another port
            "http://10.0.0.1:8000/x",  # private, and http
            "https://127.0.0.1:8000/x",  # another scheme: another origin
        ):
            with pytest.raises(UnsafeUrl):
                fetcher.check_url(url)
    finally:
        fetcher.close()
