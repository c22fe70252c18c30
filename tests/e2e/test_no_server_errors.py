"""Inputs that once reached a 500, each through the HTTP API on both databases: every one
must now be answered with a problem+json 4xx (issue 12 item 10, and the schemathesis pass of
``bench/fuzz_api.py``)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from credit_commons.core.encoding import b64url_encode


def assert_problem(response: object, status: int) -> None:
    assert getattr(response, "status_code", None) == status, getattr(response, "text", "")
    headers = getattr(response, "headers", {})
    assert headers["content-type"] == "application/problem+json"


def test_non_ascii_leaf_hash_is_a_422(client: TestClient) -> None:
    response = client.get("/v1/log/proof/inclusion", params={"leaf_hash": "\u0089"})
    assert_problem(response, 422)


def test_a_bearer_token_nested_too_deep_is_a_401(client: TestClient) -> None:
    # json.loads raised RecursionError on the token's header, outside every except clause.
    deep = b64url_encode(b"[" * 4000)
    token = f"{deep}.{b64url_encode(b'{}')}.{b64url_encode(b'sig')}"
    response = client.get("/v1/lender/client", headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401)
