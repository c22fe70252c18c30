"""The client assertion (RFC 7523 §3) the lender client signs: exactly the claims the
platform's token endpoint checks (gateway/oauth.py)."""

from __future__ import annotations

from typing import Any

import pytest

from credit_commons.client.assertion import client_assertion
from credit_commons.formats.jws import parse_compact, verify_compact
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType, PrivateKey

ENDPOINT = "https://commons.example/oauth/token"


def _header_payload(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    jws = parse_compact(token, algs=ACCEPTED_ALGS)
    return jws.header, jws.payload


@pytest.mark.parametrize("key_type", list(KeyType))
def test_claims_header_and_signature(key_type: KeyType) -> None:
    key = PrivateKey.generate(key_type)
    token = client_assertion(
        key, kid="k-1", client_id="lnd_abc", token_endpoint=ENDPOINT, now=1_000, lifetime=90
    )
    header, payload = _header_payload(token)
    assert header == {"alg": key.alg, "kid": "k-1", "typ": "JWT"}
    assert {k: v for k, v in payload.items() if k != "jti"} == {
        "iss": "lnd_abc",
        "sub": "lnd_abc",
        "aud": ENDPOINT,
        "iat": 1_000,
        "exp": 1_090,
    }
    assert verify_compact(token, key.public_key, typ="JWT", algs=ACCEPTED_ALGS) == payload


def test_every_assertion_has_a_fresh_jti() -> None:
    key = PrivateKey.generate()
    jtis = {
        _header_payload(
            client_assertion(key, kid="k", client_id="c", token_endpoint=ENDPOINT, now=1)
        )[1]["jti"]
        for _ in range(50)
    }
    assert len(jtis) == 50
    assert all(len(j) >= 32 for j in jtis)


@pytest.mark.parametrize("lifetime", [0, -1, 301])
def test_the_lifetime_stays_within_the_platforms_limit(lifetime: int) -> None:
    with pytest.raises(ValueError, match="1 to 300"):
        client_assertion(
            PrivateKey.generate(),
            kid="k",
            client_id="c",
            token_endpoint=ENDPOINT,
            now=1,
            lifetime=lifetime,
        )
