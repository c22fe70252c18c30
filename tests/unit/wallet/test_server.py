"""wallet/server.py and the request check of wallet/threshold.py: loopback-only binding, the
Host and Origin checks, the bearer token, the rate limit, the body limit, problem+json,
the request log without secrets, and the threshold request's validation — over a fake
prover (the real one is tests/e2e/test_wallet_serve.py)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import ConfigurationError, ValidationError
from credit_commons.verifier import ANY_AUDIENCE, threshold_request_hash
from credit_commons.wallet.server import (
    WalletServerConfig,
    create_wallet_app,
    require_loopback,
)
from credit_commons.wallet.threshold import (
    MAX_THRESHOLD,
    ThresholdRequest,
    ThresholdUnprovable,
    parse_threshold_request,
)

TOKEN = "t" * 43
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ASKED = {"ctx": "shg:savings", "threshold": 25_000_000, "nonce": "n-0123456789"}


class FakeProver:
    """Answers what the real prover would, from a fixed outcome; records the requests."""

    def __init__(self, provable: bool = True) -> None:
        self.provable = provable
        self.asked: list[ThresholdRequest] = []

    def prove(self, request: ThresholdRequest) -> JsonObject:
        self.asked.append(request)
        if not self.provable:
            raise ThresholdUnprovable("the wallet cannot prove this threshold in this context")
        return {"proof": {"statement": "community_score_at_least"}, "checkpoint": "note"}

    def scores(self, did: str, ctx: str) -> bytes:
        return b'{"record": {}}'


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _client(
    prover: FakeProver | None = None, clock: Clock | None = None, **config: Any
) -> TestClient:
    app = create_wallet_app(
        prover or FakeProver(),
        WalletServerConfig(token=TOKEN, **config),
        now=clock or Clock(),
    )
    return TestClient(app, base_url="http://127.0.0.1:8765", raise_server_exceptions=False)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    assert require_loopback(host) == host


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", "localhost.example", ""]
)
def test_any_other_bind_address_is_refused(host: str) -> None:
    with pytest.raises(ConfigurationError, match="loopback"):
        require_loopback(host)


def test_a_short_token_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        WalletServerConfig(token="short")


def test_a_proof_with_the_token() -> None:
    prover = FakeProver()
    answered = _client(prover).post("/v1/threshold-proof", json=ASKED, headers=AUTH)
    assert answered.status_code == 200
    assert answered.json()["checkpoint"] == "note"
    assert answered.headers["cache-control"] == "no-store"
    assert prover.asked == [ThresholdRequest("shg:savings", 25_000_000, "n-0123456789")]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer " + "u" * 43},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": TOKEN},
    ],
)
def test_without_the_token_nothing_is_answered(headers: dict[str, str]) -> None:
    prover = FakeProver()
    refused = _client(prover).post("/v1/threshold-proof", json=ASKED, headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["code"] == "auth.unauthenticated"
    assert prover.asked == []


@pytest.mark.parametrize(
    "host", ["rebound.example", "rebound.example:8765", "127.0.0.1.nip.io", "192.168.1.10:8765"]
)
def test_a_non_loopback_host_header_is_refused(host: str) -> None:
    refused = _client().post("/v1/threshold-proof", json=ASKED, headers={**AUTH, "Host": host})
    assert refused.status_code == 403
    assert refused.json()["code"] == "wallet.host_not_allowed"


@pytest.mark.parametrize("host", ["localhost:8765", "127.0.0.1", "[::1]:8765"])
def test_loopback_host_headers_are_answered(host: str) -> None:
    answered = _client().post("/v1/threshold-proof", json=ASKED, headers={**AUTH, "Host": host})
    assert answered.status_code == 200


def test_browser_origins_are_refused_unless_allowed() -> None:
    origin = {"Origin": "https://shop.example"}
    refused = _client().post("/v1/threshold-proof", json=ASKED, headers={**AUTH, **origin})
    assert refused.status_code == 403
    allowed = _client(allowed_origins=frozenset({"https://shop.example"}))
    assert allowed.post("/v1/threshold-proof", json=ASKED, headers={**AUTH, **origin}).is_success
    other = allowed.post(
        "/v1/threshold-proof", json=ASKED, headers={**AUTH, "Origin": "https://other.example"}
    )
    assert other.status_code == 403


def test_the_rate_limit_counts_a_window() -> None:
    clock = Clock()
    client = _client(clock=clock, rate=3, window=60.0)
    codes = [client.get("/v1/scores?did=d&ctx=shg", headers=AUTH).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.get("/v1/scores?did=d&ctx=shg", headers=AUTH)
    assert int(limited.headers["retry-after"]) > 0
    assert limited.json()["code"] == "request.rate_limited"
    # Requests without the token count too: guessing it is rate limited.
    clock.now += 61
    guesses = [client.get("/v1/scores", headers={}).status_code for _ in range(4)]
    assert guesses == [401, 401, 401, 429]
    clock.now += 61
    assert client.get("/v1/scores?did=d&ctx=shg", headers=AUTH).status_code == 200


def test_tokenless_requests_cannot_lock_the_holder_out() -> None:
    # Any local process or web page (<img src=http://127.0.0.1:PORT/…>, no Origin) can send
    # tokenless requests: they fill their own bucket, never the holder's.
    client = _client(rate=3, window=60.0)
    guesses = [client.get("/v1/scores", headers={}).status_code for _ in range(20)]
    assert guesses == [401, 401, 401] + [429] * 17
    wrong = {"Authorization": "Bearer " + "x" * 43}
    assert client.get("/v1/scores", headers=wrong).status_code == 429
    codes = [client.get("/v1/scores?did=d&ctx=shg", headers=AUTH).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    # And the holder's own requests do not use up the guessing bucket either.
    clock = Clock()
    fresh = _client(clock=clock, rate=3, window=60.0)
    assert [fresh.get("/v1/scores?did=d&ctx=shg", headers=AUTH).status_code for _ in range(3)] == [
        200
    ] * 3
    assert [fresh.get("/v1/scores", headers={}).status_code for _ in range(4)] == [401] * 3 + [429]


def test_a_body_over_the_limit_is_refused() -> None:
    prover = FakeProver()
    big = {**ASKED, "audience": "a" * 2000}
    refused = _client(prover, max_body=1024).post("/v1/threshold-proof", json=big, headers=AUTH)
    assert refused.status_code == 413
    assert refused.json()["code"] == "request.too_large"
    assert prover.asked == []


def test_a_streamed_body_over_the_limit_is_refused() -> None:
    def chunks() -> Any:
        yield b'{"ctx": "shg:savings", "nonce": "'
        yield b"x" * 2000
        yield b'"}'

    refused = _client(max_body=1024).post(
        "/v1/threshold-proof",
        content=chunks(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert refused.status_code == 413


def test_the_body_is_json() -> None:
    client = _client()
    text = client.post("/v1/threshold-proof", content=b"ctx=1", headers=AUTH)
    assert (text.status_code, text.json()["code"]) == (415, "request.unsupported_media_type")
    broken = client.post(
        "/v1/threshold-proof",
        content=b"{",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert (broken.status_code, broken.json()["code"]) == (422, "request.invalid")


def test_an_unprovable_threshold_is_a_problem_without_a_score() -> None:
    refused = _client(FakeProver(provable=False)).post(
        "/v1/threshold-proof", json=ASKED, headers=AUTH
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json() == {
        "type": "https://credit-commons.dev/problems/wallet.threshold_unprovable",
        "title": "The threshold cannot be proved",
        "status": 422,
        "code": "wallet.threshold_unprovable",
        "detail": "the wallet cannot prove this threshold in this context",
        "instance": "/v1/threshold-proof",
    }


def test_unknown_routes_and_methods_are_problems() -> None:
    client = _client()
    missing = client.get("/v1/nothing", headers=AUTH)
    assert (missing.status_code, missing.headers["content-type"]) == (
        404,
        "application/problem+json",
    )
    assert missing.json()["code"] == "request.not_found"
    wrong = client.get("/v1/threshold-proof", headers=AUTH)
    assert (wrong.status_code, wrong.json()["code"]) == (405, "request.method_not_allowed")
    assert wrong.headers["content-type"] == "application/problem+json"


def test_the_request_log_names_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="credit_commons.wallet.server"):
        _client().post("/v1/threshold-proof", json=ASKED, headers=AUTH)
        _client().get("/v1/scores?did=did:key:z6Mk&ctx=shg:savings", headers=AUTH)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("POST /v1/threshold-proof 200 ")
    assert lines[1].startswith("GET /v1/scores 200 ")
    text = "\n".join(lines)
    for secret in (TOKEN, ASKED["nonce"], "did:key", "25000000"):
        assert secret not in text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**ASKED, "ctx": "Not A Context"}, "ctx"),
        ({**ASKED, "ctx": 7}, "ctx"),
        ({**ASKED, "threshold": -1}, "threshold"),
        ({**ASKED, "threshold": MAX_THRESHOLD + 1}, "threshold"),
        ({**ASKED, "threshold": 25.5}, "threshold"),
        ({**ASKED, "threshold": "25000000"}, "threshold"),
        ({**ASKED, "threshold": True}, "threshold"),
        ({**ASKED, "nonce": "short"}, "nonce"),
        ({**ASKED, "nonce": "has space in it"}, "nonce"),
        ({**ASKED, "nonce": "x" * 257}, "nonce"),
        ({**ASKED, "audience": ""}, "audience"),
        ({**ASKED, "audience": "a\nb"}, "audience"),
        ({**ASKED, "audience": "a" * 513}, "audience"),
        ({**ASKED, "extra": 1}, "extra"),
        ({"ctx": "shg:savings", "nonce": "n-0123456789"}, "threshold"),
    ],
)
def test_threshold_requests_are_validated(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_threshold_request(body)
    assert refused.value.extra["field"] == field
    answered = _client().post("/v1/threshold-proof", json=body, headers=AUTH)
    assert (answered.status_code, answered.json()["field"]) == (422, field)


def test_the_bounds_are_accepted() -> None:
    assert parse_threshold_request({**ASKED, "threshold": 0}).threshold == 0
    top = parse_threshold_request({**ASKED, "threshold": MAX_THRESHOLD, "audience": "a" * 512})
    assert top.threshold == MAX_THRESHOLD
    assert parse_threshold_request(ASKED).bound_audience == ANY_AUDIENCE
    with pytest.raises(ValidationError):
        parse_threshold_request([ASKED])


def test_the_request_hash_covers_every_member() -> None:
    base = {"ctx": "shg:savings", "threshold": 1, "nonce": "n-0123456789", "audience": "a"}
    first = threshold_request_hash(**base)  # type: ignore[arg-type]
    assert len(first) == 64
    for name, value in (
        ("ctx", "shg:other"),
        ("threshold", 2),
        ("nonce", "n-x"),
        ("audience", "b"),
    ):
        assert threshold_request_hash(**{**base, name: value}) != first  # type: ignore[arg-type]
    assert threshold_request_hash(**base) == first  # type: ignore[arg-type]
