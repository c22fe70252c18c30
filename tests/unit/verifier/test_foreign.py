"""Foreign issuer key resolution: the metadata URL, the TTL cache, refetch on a new kid."""

from __future__ import annotations

import json

import httpx
import pytest

from credit_commons.core.net import OutboundFetcher, UnsafeUrl
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.verifier.foreign import ForeignIssuers, UnknownForeignKey, metadata_url

ISSUER = "https://coop.example/tenants/7"


def test_metadata_url_puts_the_well_known_segment_before_the_path() -> None:
    # SD-JWT VC draft §5 (like RFC 8414 §3.1).
    assert metadata_url("https://coop.example") == "https://coop.example/.well-known/jwt-vc-issuer"
    assert metadata_url(ISSUER) == "https://coop.example/.well-known/jwt-vc-issuer/tenants/7"
    assert metadata_url("https://coop.example:8443/a/") == (
        "https://coop.example:8443/.well-known/jwt-vc-issuer/a"
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_keys_are_cached_for_the_ttl_and_refetched_for_an_unseen_kid() -> None:
    keys = [PrivateKey.generate(KeyType.ED25519)]
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        jwks = [public_key_to_jwk(k.public_key, kid=f"k{i}") for i, k in enumerate(keys)]
        return httpx.Response(200, text=json.dumps({"issuer": ISSUER, "jwks": {"keys": jwks}}))

    clock = Clock()
    fetcher = OutboundFetcher(
        transport=httpx.MockTransport(handler), resolver=lambda _: ["8.8.8.8"]
    )
    foreign = ForeignIssuers(fetcher, ttl=60, refetch_after=10, clock=clock)
    assert foreign.key(ISSUER, "https", {"kid": "k0"}) == keys[0].public_key
    assert foreign.key(ISSUER, "https", {"kid": "k0"}) == keys[0].public_key
    assert len(calls) == 1
    keys.append(PrivateKey.generate(KeyType.ED25519))  # the issuer rotates
    # Right after a fetch an unseen kid is refused from the cache: made-up kids in a stream
    # of presentations cannot make this verifier fetch from the issuer each time.
    for _ in range(5):
        with pytest.raises(UnknownForeignKey):
            foreign.key(ISSUER, "https", {"kid": "k1"})
    assert len(calls) == 1
    clock.now += 10
    assert foreign.key(ISSUER, "https", {"kid": "k1"}) == keys[1].public_key
    assert len(calls) == 2
    with pytest.raises(UnknownForeignKey):
        foreign.key(ISSUER, "https", {"kid": "k7"})
    assert len(calls) == 2  # just fetched: not again
    clock.now += 10
    with pytest.raises(UnknownForeignKey):
        foreign.key(ISSUER, "https", {"kid": "k7"})
    assert len(calls) == 3  # an unknown kid is looked up once more, then refused
    assert foreign.key(ISSUER, "https", {"kid": "k0"}) == keys[0].public_key
    clock.now += 61
    foreign.key(ISSUER, "https", {"kid": "k0"})
    assert len(calls) == 4


def test_the_ssrf_guard_applies_to_metadata() -> None:
    fetcher = OutboundFetcher(
        transport=httpx.MockTransport(lambda _: httpx.Response(500)),
        resolver=lambda _: ["10.0.0.1"],
    )
    with pytest.raises(UnsafeUrl):
        ForeignIssuers(fetcher).key(ISSUER, "https", {"kid": "k0"})
