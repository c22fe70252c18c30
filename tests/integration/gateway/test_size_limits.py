"""Request size limits through the app (issue 12 item 9): a body over the maximum is a 413
problem+json before it is parsed — declared or streamed — and over-long headers a 431;
bulk issuance takes a larger body.  The real server's own limits are in tests/e2e/test_serve.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from credit_commons.core.settings import Settings
from credit_commons.gateway.size_limits import body_limit

MiB = 1024 * 1024


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_a_declared_body_over_the_maximum_is_413(client: TestClient) -> None:
    response = client.post(
        "/v1/identities",
        content=b"{" + b" " * MiB + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 413, "request.too_large")


def test_a_streamed_body_that_grows_past_the_maximum_is_413(client: TestClient) -> None:
    sent = []

    def chunks() -> Iterator[bytes]:
        yield b'{"display_name": "'
        for _ in range(40):  # 40 x 64 KiB: past 1 MiB with no Content-Length
            sent.append(1)
            yield b"a" * 65536
        yield b'"}'

    response = client.post(
        "/v1/identities", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "request.too_large")


def test_a_body_at_the_maximum_is_parsed(client: TestClient) -> None:
    body = b'{"x": "' + b"a" * (MiB - 20) + b'"}'
    assert len(body) <= MiB
    response = client.post(
        "/v1/identities", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422  # parsed, and refused for what it says


def test_bulk_issuance_takes_a_larger_body(client: TestClient, settings: Settings) -> None:
    assert body_limit(settings, "POST", "/v1/credentials/batch") == 8 * MiB
    body = b'{"items": [' + b" " * (2 * MiB) + b"]}"
    headers = {"Content-Type": "application/json"}
    batch = client.post("/v1/credentials/batch", content=body, headers=headers)
    assert batch.status_code == 401  # read, then refused for want of a token
    single = client.post("/v1/credentials", content=body, headers=headers)
    assert_problem(single, 413, "request.too_large")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Long": "a" * 9000},  # one line past 8 KiB
        {f"X-Many-{i}": "a" * 4000 for i in range(10)},  # 40 KiB in all
    ],
)
def test_over_long_headers_are_431(client: TestClient, headers: dict[str, str]) -> None:
    assert_problem(client.get("/healthz", headers=headers), 431, "request.headers_too_large")


def test_an_over_long_target_is_431(client: TestClient) -> None:
    response = client.get("/v1/log/checkpoint", params={"q": "a" * 9000})
    assert_problem(response, 431, "request.headers_too_large")
