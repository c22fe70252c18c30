"""The pure parts of the lender gateway: limiter, token minting, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError as SettingsError
from tests.conftest import make_settings

from credit_commons.formats.jws import parse_compact, verify_compact
from credit_commons.gateway.access_token import int_claim, mint_access_token
from credit_commons.gateway.oauth import TokenError
from credit_commons.gateway.ratelimit import RateLimited, RateLimits, RateLimitState
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType, PrivateKey
from credit_commons.keys.store import KeyVersion, StoredSigner


def _header_payload(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    jws = parse_compact(token, algs=ACCEPTED_ALGS)
    return jws.header, jws.payload


def test_rate_limit_headers() -> None:
    state = RateLimitState(limit=10, remaining=0, reset_after=0, policy="log.ip.60s", window=60)
    assert RateLimited(state).headers() == [
        ("Retry-After", "1"),
        # draft-ietf-httpapi-ratelimit-headers-11 §3, §4
        ("RateLimit-Policy", '"log.ip.60s";q=10;w=60'),
        ("RateLimit", '"log.ip.60s";r=0;t=0'),
        ("X-RateLimit-Limit", "10"),
        ("X-RateLimit-Remaining", "0"),
        ("X-RateLimit-Reset", "0"),
    ]


@pytest.mark.parametrize("strategy", ["moving-window", "fixed-window"])
def test_memory_limiter(strategy: str) -> None:
    limiter = RateLimits(client_limit="2/minute;5/hour", ip_limit="1/second", strategy=strategy)
    # Several limits: the tightest one is reported.
    first = limiter.hit_client("api", "lnd_b")
    assert (first.limit, first.remaining) == (2, 1)
    assert limiter.hit_client("api", "lnd_b").remaining == 0
    with pytest.raises(RateLimited) as refused:
        limiter.hit_client("api", "lnd_b")
    assert refused.value.status == 429
    assert refused.value.state.limit == 2
    assert limiter.hit_client("token", "lnd_b").remaining == 1  # another namespace
    assert limiter.hit_ip("api", "192.0.2.7").limit == 1
    limiter.close()


def test_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert settings.access_token_ttl == 300
    assert settings.rate_limit_client == "600/minute"
    assert settings.rate_limit_ip == "1200/minute"
    assert settings.redis_url is None
    with pytest.raises(SettingsError):
        make_settings(tmp_path, rate_limit_ip="lots")
    with pytest.raises(SettingsError):
        make_settings(tmp_path, access_token_ttl=5)


def test_minted_tokens() -> None:
    key = PrivateKey.generate()
    now = datetime(2026, 11, 22, tzinfo=UTC)
    info = KeyVersion("oauth", 1, KeyType.ED25519, "kid-1", key.public_key, "embedded", now)
    token = mint_access_token(
        StoredSigner(info, key),
        issuer="https://cc.example",
        client_id="lnd_x",
        scopes=frozenset({"b", "a"}),
        now=now,
        ttl=timedelta(seconds=120),
        jti="at_1",
    )
    header, payload = _header_payload(token)
    assert header == {"alg": "EdDSA", "kid": "kid-1", "typ": "at+jwt"}
    ts = int(now.timestamp())
    assert payload == {
        "iss": "https://cc.example", "aud": "https://cc.example", "sub": "lnd_x",
        "client_id": "lnd_x", "iat": ts, "nbf": ts, "exp": ts + 120, "jti": "at_1",
        "scope": "a b",
    }  # fmt: skip
    assert verify_compact(token, key.public_key, typ="at+jwt", algs=ACCEPTED_ALGS) == payload
    assert int_claim({"exp": True}, "exp") is None
    assert int_claim({"exp": 1.5}, "exp") is None
    assert int_claim({"exp": 3}, "exp") == 3


def test_token_errors() -> None:
    error = TokenError("invalid_client", "client authentication failed", status=401)
    assert error.body() == {
        "error": "invalid_client",
        "error_description": "client authentication failed",
    }
    assert error.status == 401
    assert error.reason is None
