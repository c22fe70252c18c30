"""Rate limits per lender client and per IP, in memory and in a real Redis, on both
databases: the request past the limit gets 429 with ``Retry-After`` and ``X-RateLimit-*``;
requests within it carry the ``X-RateLimit-*`` headers; a Redis that is down fails closed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr
from tests.lenders import (
    access_token,
    admin_headers,
    assertion,
    counted,
    denials,
    register,
    token_request,
)

from credit_commons.core.clock import FixedClock
from credit_commons.gateway.ratelimit import RateLimits, RateLimitState, rate_limits
from credit_commons.runtime import Runtime

Install = Callable[..., RateLimits]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def install(request: pytest.FixtureRequest, runtime: Runtime, key_prefix: str) -> Iterator[Install]:
    """Installs a limiter with the given limits in the runtime, over memory or Redis."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    made: list[RateLimits] = []

    def make(*, client_limit: str = "100/minute", ip_limit: str = "100/minute") -> RateLimits:
        limiter = RateLimits(
            client_limit=client_limit, ip_limit=ip_limit, redis_url=redis_url, key_prefix=key_prefix
        )
        runtime.extras["rate_limits"] = limiter
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        limiter.close()


def assert_limited(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "request.rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["x-ratelimit-limit"] == str(limit)
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert 0 <= int(response.headers["x-ratelimit-reset"]) <= 60


def now_of(clock: FixedClock) -> int:
    return int(clock.now().timestamp())


def test_lender_api_is_limited_per_client(
    client: TestClient, runtime: Runtime, clock: FixedClock, install: Install
) -> None:
    limiter = install(client_limit="3/minute")
    client_id, key = register(client, admin_headers(runtime))
    other_id, other_key = register(client, admin_headers(runtime))
    # Fetching the token counts in the token endpoint's budget, not the API's.
    token = {"Authorization": f"Bearer {access_token(client, key, client_id, now_of(clock))}"}
    remaining = []
    for _ in range(3):
        response = client.get("/v1/lender/client", headers=token)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "3"
        assert 0 < int(response.headers["x-ratelimit-reset"]) <= 60
        remaining.append(response.headers["x-ratelimit-remaining"])
    assert remaining == ["2", "1", "0"]
    assert_limited(client.get("/v1/lender/client", headers=token), 3)
    # Another client has its own budget.
    other = {"Authorization": f"Bearer {access_token(client, other_key, other_id, now_of(clock))}"}
    assert client.get("/v1/lender/client", headers=other).status_code == 200
    assert denials(runtime) == counted(runtime) == []
    assert limiter.backend in {"memory", "redis"}


def test_token_endpoint_is_limited_per_ip(
    client: TestClient, runtime: Runtime, clock: FixedClock, install: Install
) -> None:
    install(ip_limit="2/minute")
    client_id, key = register(client, admin_headers(runtime))
    assert token_request(client, assertion(key, client_id, now_of(clock))).status_code == 200
    garbage = token_request(client, "not-a-jwt")
    assert garbage.status_code == 401
    assert garbage.headers["x-ratelimit-remaining"] == "0"
    # The third request from this address is refused before anything is checked or logged.
    assert_limited(token_request(client, assertion(key, client_id, now_of(clock))), 2)
    assert [d["reason"] for d in counted(runtime)] == ["auth.assertion_invalid"]


def test_token_endpoint_is_limited_per_client(
    client: TestClient, runtime: Runtime, clock: FixedClock, install: Install
) -> None:
    install(client_limit="2/minute")
    client_id, key = register(client, admin_headers(runtime))
    other_id, other_key = register(client, admin_headers(runtime))
    for _ in range(2):
        assert token_request(client, assertion(key, client_id, now_of(clock))).status_code == 200
    assert_limited(token_request(client, assertion(key, client_id, now_of(clock))), 2)
    assert token_request(client, assertion(other_key, other_id, now_of(clock))).status_code == 200


def test_bad_tokens_spend_the_ip_budget(
    client: TestClient, runtime: Runtime, install: Install
) -> None:
    install(ip_limit="2/minute")
    for _ in range(2):
        assert client.get("/v1/lender/client").status_code == 401
    assert_limited(client.get("/v1/lender/client"), 2)
    assert len(counted(runtime)) == 2


@pytest.mark.redis
def test_replicas_share_counters_in_redis(redis_url: str, key_prefix: str) -> None:
    first, second = (
        RateLimits(
            client_limit="3/minute", ip_limit="3/minute", redis_url=redis_url, key_prefix=key_prefix
        )
        for _ in range(2)
    )
    try:
        assert first.hit_client("api", "lnd_a").remaining == 2
        assert second.hit_client("api", "lnd_a").remaining == 1
        assert second.hit_ip("api", "192.0.2.1") == RateLimitState(3, 2, 60)
        keys = redis.Redis.from_url(redis_url)
        try:
            assert keys.keys(f"{key_prefix}:ratelimit*")
        finally:
            keys.close()
    finally:
        first.close()
        second.close()


def test_redis_down_fails_closed(client: TestClient, runtime: Runtime, clock: FixedClock) -> None:
    runtime.extras["rate_limits"] = RateLimits(
        client_limit="5/minute", ip_limit="5/minute", redis_url="redis://127.0.0.1:1/0"
    )
    for response in (
        token_request(client, "x.y.z"),
        client.get("/v1/lender/client", headers={"Authorization": "Bearer x"}),
    ):
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "service.rate_limit_unavailable"
        assert "redis" not in response.text.lower()
    assert denials(runtime) == counted(runtime) == []


def test_settings_choose_the_store(runtime: Runtime) -> None:
    assert rate_limits(runtime).backend == "memory"
    runtime.extras.pop("rate_limits").close()
    runtime.settings = runtime.settings.model_copy(
        update={"redis_url": SecretStr("redis://127.0.0.1:6379/15")}
    )
    limiter = rate_limits(runtime)
    try:
        assert limiter.backend == "redis"
    finally:
        limiter.close()
