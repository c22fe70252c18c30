"""Rate limits on every route group, per address and per credential, and per lender client,
in memory and in a real Redis, on both databases: the request past the limit gets 429 with
``Retry-After``, the IETF ``RateLimit``/``RateLimit-Policy`` fields and ``X-RateLimit-*``;
requests within it carry the same fields; a Redis that is down fails closed; a forwarding
header counts only from a trusted proxy (issue 12 items 5, 6 and 8)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import http_sfv
import httpx
import pytest
import redis
from fastapi.routing import APIRoute
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
from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.gateway.ratelimit import (
    LIMITERS,
    RateLimits,
    RateLimitState,
    close_rate_limits,
    rate_limits,
)
from credit_commons.gateway.route_groups import (
    GROUPS,
    OTHER,
    WEB_GROUPS,
    classify,
    is_console_page,
)
from credit_commons.runtime import Runtime
from credit_commons.web.routes import AREAS

Install = Callable[..., RateLimits]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def install(request: pytest.FixtureRequest, runtime: Runtime, key_prefix: str) -> Iterator[Install]:
    """Installs a limiter with the given limits in the runtime, over memory or Redis."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    made: list[RateLimits] = []

    def make(
        *,
        client_limit: str = "100/minute",
        ip_limit: str = "100/minute",
        limits: dict[str, str] | None = None,
    ) -> RateLimits:
        limiter = RateLimits(
            client_limit=client_limit,
            ip_limit=ip_limit,
            limits=limits,
            redis_url=redis_url,
            key_prefix=key_prefix,
        )
        LIMITERS.set(runtime, limiter)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        limiter.close()


def assert_limited(response: httpx.Response, limit: int, *, html: bool = False) -> None:
    assert response.status_code == 429, response.text
    if html:  # a console page: the HTML error page, with the same fields
        assert response.headers["content-type"].startswith("text/html")
        assert "Too many requests" in response.text
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
    else:
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
    LIMITERS.set(
        runtime,
        RateLimits(client_limit="5/minute", ip_limit="5/minute", redis_url="redis://127.0.0.1:1/0"),
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
    close_rate_limits(runtime)
    runtime.settings = runtime.settings.model_copy(
        update={"redis_url": SecretStr("redis://127.0.0.1:6379/15")}
    )
    limiter = rate_limits(runtime)
    try:
        assert limiter.backend == "redis"
    finally:
        limiter.close()


# -- every route group (issue 12 item 8) --------------------------------------------------

# One request of each group (its answer does not matter: the count comes first).
GROUP_REQUESTS: dict[str, tuple[str, str]] = {
    "lender-api": ("GET", "/v1/lender/client"),
    "lender-token": ("POST", "/oauth/token"),
    "registration": ("POST", "/v1/identities"),
    "identity": ("GET", "/v1/identities/idt_aaaaaaaaaaaaaaaaaaaaaa"),
    "profile": ("GET", "/v1/identities/idt_aaaaaaaaaaaaaaaaaaaaaa/profile"),
    "export": ("POST", "/v1/identities/idt_aaaaaaaaaaaaaaaaaaaaaa/export"),
    "erase": ("DELETE", "/v1/identities/idt_aaaaaaaaaaaaaaaaaaaaaa"),
    "dsr": ("POST", "/v1/identities/idt_aaaaaaaaaaaaaaaaaaaaaa/requests"),
    "attestations": ("POST", "/v1/identities/idt_aaaaaaaaaaaaaaaaaaaaaa/verify"),
    "onboarding": ("POST", "/v1/onboarding/bindings"),
    "consent": ("GET", "/v1/borrowers/idt_aaaaaaaaaaaaaaaaaaaaaa/consents"),
    "verification": ("POST", "/v1/presentations/verify"),
    "verifier": ("POST", "/v1/verifier/requests"),
    "issuance": ("POST", "/v1/credentials"),
    "admin": ("GET", "/v1/admin/trusted-issuers"),
    "oid4vci-offers": ("GET", "/v1/credential-offers/off_x"),
    "oid4vci-token": ("POST", "/token"),
    "oid4vci-credential": ("POST", "/credential"),
    "log": ("GET", "/v1/log/checkpoint"),
    "tiles": ("GET", "/checkpoint"),
    "committee-tasks": ("GET", "/v1/tasks/current"),
    "committee-partials": ("POST", "/v1/partials"),
    "status-lists": ("GET", "/status-lists/sl_x"),
    "zk-statements": ("GET", "/v1/zk/statements"),
    "rules": ("GET", "/v1/rules/active"),
    "reputation-events": ("POST", "/v1/events"),
    "reputation-members": ("POST", "/v1/reputation/members"),
    "subscribe": ("GET", "/v1/subscribe?topic=consent.*"),
    "blobs": ("GET", "/v1/blobs/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
    "scores": ("GET", "/v1/scores?did=did:key:z6Mk&ctx=general"),
    "well-known": ("GET", "/.well-known/openid-credential-issuer"),
    "operations": ("GET", "/healthz"),
    "internal": ("GET", "/v1/internal/log/state"),
    "docs": ("GET", "/openapi.json"),
    "web-signin": ("POST", "/signin"),
    "web": ("GET", "/"),
    "web-static": ("GET", "/static/console.css"),
    "other": ("GET", "/no/such/path"),
}


def test_every_group_has_a_request_here() -> None:
    assert set(GROUP_REQUESTS) == {group.name for group in GROUPS}


def test_every_operation_belongs_to_a_named_group(client: TestClient) -> None:
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        concrete = path.replace("{", "").replace("}", "")
        for method in operations:
            assert classify(method.upper(), concrete) != OTHER, (method, path)


_CONSOLE_ACTS = frozenset({"export", "erase", "consent", "lender-api"})


def test_every_console_route_belongs_to_a_console_group() -> None:
    # The console's routes are not in the OpenAPI document: read them from its areas.
    routes = [r for area in AREAS for r in area.router.routes if isinstance(r, APIRoute)]
    assert {r.path for r in routes} >= {"/", "/signin", "/signout", "/signout/everywhere"}
    for route in routes:
        concrete = route.path.replace("{", "").replace("}", "")
        for method in route.methods:
            # A console act the API limits more strictly counts in the API's group
            # (tests/integration/web/test_console_rate_limits.py); its refusal is still a page.
            assert classify(method, concrete) in WEB_GROUPS | _CONSOLE_ACTS, (method, route.path)
            assert is_console_page(concrete), route.path
    assert classify("GET", "/static/console.css") == "web-static"
    assert classify("POST", "/signin/code") == "web-signin"
    assert classify("GET", "/signin/code") == "web"
    assert classify("GET", "/v1/lender/client") == "lender-api"


def parse_fields(response: httpx.Response) -> tuple[dict[str, Any], dict[str, Any]]:
    """RateLimit-Policy and RateLimit parsed as Structured Field Lists (RFC 9651), checked
    against draft-ietf-httpapi-ratelimit-headers-11 §3.1 and §4.1."""
    policies = http_sfv.List()
    policies.parse(response.headers["ratelimit-policy"].encode())
    current = http_sfv.List()
    current.parse(response.headers["ratelimit"].encode())
    by_name: dict[str, Any] = {}
    for item in policies:
        assert isinstance(item.value, str)
        assert isinstance(item.params["q"], int)
        assert item.params["q"] >= 0
        assert isinstance(item.params["w"], int)
        assert item.params["w"] > 0
        by_name[item.value] = item.params
    state: dict[str, Any] = {}
    for item in current:
        assert item.value in by_name
        assert isinstance(item.params["r"], int)
        assert item.params["r"] >= 0
        assert isinstance(item.params["t"], int)
        assert item.params["t"] >= 0
        state[item.value] = item.params
    return by_name, state


@pytest.mark.parametrize("group", sorted(GROUP_REQUESTS))
def test_every_group_hits_its_limit(client: TestClient, install: Install, group: str) -> None:
    install(limits={f"{group}.ip": "2/minute"})
    method, path = GROUP_REQUESTS[group]
    for remaining in (1, 0):
        allowed = client.request(method, path)
        assert allowed.status_code != 429, allowed.text
        policies, state = parse_fields(allowed)
        name = f"{group}.ip.60s"
        assert policies[name] == {"q": 2, "w": 60}
        assert state[name]["r"] == remaining
    refused = client.request(method, path)
    assert_limited(refused, 2, html=group in WEB_GROUPS)
    policies, state = parse_fields(refused)
    assert state[f"{group}.ip.60s"]["r"] == 0
    if group not in WEB_GROUPS:
        assert refused.json()["violated-policies"] == [f"{group}.ip.60s"]
    # Another group keeps its own budget.
    other = "operations" if group != "operations" else "log"
    assert client.request(*GROUP_REQUESTS[other]).status_code != 429


def test_an_authenticated_caller_is_limited_per_credential(
    client: TestClient, install: Install
) -> None:
    install(limits={"identity.client": "2/minute"})
    path = GROUP_REQUESTS["identity"][1]
    first = {"Authorization": "Bearer cct_first"}
    for _ in range(2):
        assert client.get(path, headers=first).status_code == 401
    assert_limited(client.get(path, headers=first), 2)
    # Another credential from the same address has its own budget; no credential, none.
    assert client.get(path, headers={"Authorization": "Bearer cct_other"}).status_code == 401
    assert client.get(path).status_code == 401


def test_registration_is_limited_per_address_and_per_client(
    client: TestClient, runtime: Runtime, install: Install
) -> None:
    install(limits={"registration.ip": "3/minute", "registration.client": "1/minute"})
    admin = admin_headers(runtime)
    assert client.post("/v1/identities", json={}, headers=admin).status_code != 429
    assert_limited(client.post("/v1/identities", json={}, headers=admin), 1)
    assert client.post("/v1/identities", json={}).status_code != 429
    assert_limited(client.post("/v1/identities", json={}), 3)
    # The refused requests count too: a flood stays refused.
    assert client.post("/v1/identities", json={}).status_code == 429


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    runtime: Runtime, install: Install, settings: Settings
) -> None:
    install(limits={"operations.ip": "2/minute"})
    app = create_app(settings, runtime=runtime)
    with TestClient(app, client=("203.0.113.9", 4000)) as outsider:
        for i in range(2):
            spoof = {"X-Forwarded-For": f"198.51.100.{i}"}
            assert outsider.get("/healthz", headers=spoof).status_code == 200
        assert_limited(outsider.get("/healthz", headers={"X-Forwarded-For": "198.51.100.99"}), 2)


def test_a_configured_proxy_names_the_client(
    runtime: Runtime, install: Install, settings: Settings
) -> None:
    install(limits={"operations.ip": "2/minute"})
    runtime.settings = settings.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]})
    app = create_app(runtime.settings, runtime=runtime)
    with TestClient(app, client=("10.0.0.2", 4000)) as proxy:
        for i in range(3):  # three clients behind the proxy, each with its own budget
            forwarded = {"X-Forwarded-For": f"6.6.6.6, 198.51.100.{i}"}
            assert proxy.get("/healthz", headers=forwarded).status_code == 200
        same = {"X-Forwarded-For": "198.51.100.0"}
        assert proxy.get("/healthz", headers=same).status_code == 200
        assert_limited(proxy.get("/healthz", headers=same), 2)
