"""Remote status lists: SSRF guard, signature, subject binding, expiry and caching."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import cbor2
import httpx
import pytest

from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.core.net import OutboundFetcher, UnsafeUrl
from credit_commons.formats.jws import sign_compact
from credit_commons.formats.status_list import StatusList, TokenStatus
from credit_commons.formats.status_list_cwt import CWT_MEDIA_TYPE, issue_status_list_cwt
from credit_commons.keys.algorithms import KeyType, PrivateKey, PublicKey
from credit_commons.verifier.status_fetch import StatusListFetcher, StatusListRejected

URI = "https://issuer.example/status-lists/sl_1"
NOW = 1_800_000_000
ISSUER = PrivateKey.generate(KeyType.ED25519)


def token(
    *,
    sub: str = URI,
    exp: int = NOW + 600,
    ttl: int = 300,
    signer: PrivateKey = ISSUER,
    typ: str = "statuslist+jwt",
) -> str:
    status_list = StatusList.new(64, bits=2)
    status_list.set(7, TokenStatus.INVALID)
    status_list.set(9, TokenStatus.SUSPENDED)
    return sign_compact(
        {"typ": typ, "kid": "k1"},
        {"sub": sub, "iat": NOW, "exp": exp, "ttl": ttl, "status_list": status_list.to_json()},
        signer,
    )


def fetcher_for(
    body: Callable[[], str], calls: list[str], address: str = "93.184.216.34"
) -> OutboundFetcher:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(
            200, text=body(), headers={"Content-Type": "application/statuslist+jwt"}
        )

    return OutboundFetcher(transport=httpx.MockTransport(handler), resolver=lambda _h: [address])


def test_status_is_read_verified_and_cached_until_ttl() -> None:
    calls: list[str] = []
    now = [float(NOW)]
    lists = StatusListFetcher(
        fetcher_for(token, calls), lambda _h: ISSUER.public_key, clock=lambda: now[0]
    )
    assert lists.status(URI, 7) is TokenStatus.INVALID
    assert lists.status(URI, 9) is TokenStatus.SUSPENDED
    assert lists.status(URI, 8) is TokenStatus.VALID
    assert len(calls) == 1  # cached
    now[0] += 301
    lists.status(URI, 7)
    assert len(calls) == 2  # the ttl passed


@pytest.mark.parametrize(
    "bad",
    [
        lambda: token(sub="https://issuer.example/status-lists/other"),
        lambda: token(exp=NOW - 1),
        lambda: token(signer=PrivateKey.generate(KeyType.ED25519)),
        lambda: token(typ="JWT"),
        lambda: "not-a-jwt",
    ],
)
def test_unacceptable_lists_are_rejected(bad: Callable[[], str]) -> None:
    lists = StatusListFetcher(
        fetcher_for(bad, []), lambda _h: ISSUER.public_key, clock=lambda: float(NOW)
    )
    with pytest.raises(StatusListRejected):
        lists.status(URI, 7)


def test_ssrf_guard_applies() -> None:
    calls: list[str] = []
    lists = StatusListFetcher(
        fetcher_for(token, calls, address="10.0.0.5"), lambda _h: ISSUER.public_key
    )
    with pytest.raises(UnsafeUrl):
        lists.status(URI, 7)
    with pytest.raises(UnsafeUrl):
        lists.status("http://issuer.example/status-lists/sl_1", 7)
    assert calls == []


# -- the CWT form (draft-ietf-oauth-status-list §5.2) ------------------------------------------


def cwt(
    *,
    sub: str = URI,
    exp: int = NOW + 600,
    signer: PrivateKey = ISSUER,
    kid: str = "k1",
) -> bytes:
    status_list = StatusList.new(64, bits=2)
    status_list.set(7, TokenStatus.INVALID)
    status_list.set(9, TokenStatus.SUSPENDED)
    return issue_status_list_cwt(
        uri=sub, status_list=status_list, iat=NOW, exp=exp, ttl=300, signer=signer, kid=kid
    )


def cwt_fetcher(
    body: Callable[[], bytes], accepts: list[str], media_type: str = CWT_MEDIA_TYPE
) -> OutboundFetcher:
    def handler(request: httpx.Request) -> httpx.Response:
        accepts.append(request.headers["accept"])
        return httpx.Response(200, content=body(), headers={"Content-Type": media_type})

    return OutboundFetcher(
        transport=httpx.MockTransport(handler), resolver=lambda _h: ["93.184.216.34"]
    )


def test_a_cwt_list_is_read_with_the_key_its_kid_names() -> None:
    accepts: list[str] = []
    headers: list[dict[str, object]] = []

    def resolve(header: Mapping[str, Any]) -> PublicKey:
        headers.append(dict(header))
        return ISSUER.public_key

    lists = StatusListFetcher(cwt_fetcher(cwt, accepts), resolve, clock=lambda: float(NOW))
    assert lists.status(URI, 7) is TokenStatus.INVALID
    assert lists.status(URI, 9) is TokenStatus.SUSPENDED
    assert lists.status(URI, 8) is TokenStatus.VALID
    assert CWT_MEDIA_TYPE in accepts[0]  # the verifier says it reads the CWT form
    assert len(accepts) == 1  # cached as a JWT list is
    assert headers == [{"alg": "EdDSA", "kid": "k1"}]


@pytest.mark.parametrize(
    "bad",
    [
        lambda: cwt(sub="https://issuer.example/status-lists/other"),
        lambda: cwt(exp=NOW - 1),
        lambda: cwt(signer=PrivateKey.generate(KeyType.ED25519)),
        lambda: cwt()[:-1],
        lambda: cwt() + b"\x00",
        lambda: token().encode(),  # a JWT sent as a CWT
    ],
)
def test_unacceptable_cwt_lists_are_rejected(bad: Callable[[], bytes]) -> None:
    lists = StatusListFetcher(
        cwt_fetcher(bad, []), lambda _h: ISSUER.public_key, clock=lambda: float(NOW)
    )
    with pytest.raises(StatusListRejected):
        lists.status(URI, 7)


def test_a_cwt_sent_as_a_jwt_is_rejected() -> None:
    lists = StatusListFetcher(
        cwt_fetcher(cwt, [], media_type="application/statuslist+jwt"),
        lambda _h: ISSUER.public_key,
        clock=lambda: float(NOW),
    )
    with pytest.raises(StatusListRejected):
        lists.status(URI, 7)


# -- the JWT form's registered claims (TSL §5.1, RFC 7519 §4.1) --------------------------------


def claims_token(**changes: Any) -> str:
    # A statuslist+jwt whose claims are changed (a value) or removed (None) by name.
    status_list = StatusList.new(64, bits=2)
    status_list.set(7, TokenStatus.INVALID)
    claims: dict[str, Any] = {
        "sub": URI,
        "iat": NOW - 60,
        "exp": NOW + 600,
        "ttl": 300,
        "status_list": status_list.to_json(),
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name)
        else:
            claims[name] = value
    return sign_compact({"typ": "statuslist+jwt", "kid": "k1"}, claims, ISSUER)


def jwt_lists(body: str, now: list[float] | None = None) -> StatusListFetcher:
    clock = now or [float(NOW)]
    return StatusListFetcher(
        fetcher_for(lambda: body, []), lambda _h: ISSUER.public_key, clock=lambda: clock[0]
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iat": None}, "no iat"),  # §5.1: iat REQUIRED
        ({"iat": "1800000000"}, "NumericDate"),
        ({"nbf": NOW + 3600}, "not valid yet"),  # RFC 7519 §4.1.5
        ({"exp": NOW - 0.5}, "expired"),  # a NumericDate need not be an integer
        ({"exp": "2100-01-01"}, "NumericDate"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": "300"}, "ttl"),
    ],
    ids=["no iat", "iat text", "nbf ahead", "float exp passed", "exp text", "ttl 0", "ttl text"],
)
def test_jwt_lists_with_unacceptable_claims_are_rejected(
    changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(StatusListRejected, match=reason):
        jwt_lists(claims_token(**changes)).status(URI, 7)


def test_jwt_lists_with_float_and_far_claims_are_read_and_cached_by_them() -> None:
    # A float ttl (§5.1: "a positive number"), nbf within the leeway, and an exp far beyond
    # what a float holds (written by hand: the platform's own signer refuses such numbers):
    # read, and cached for the ttl without overflowing.
    now = [float(NOW)]
    claims = json.loads(b64url_decode(claims_token(ttl=30.5, nbf=NOW + 30).split(".")[1]))
    payload = json.dumps(claims).replace(str(NOW + 600), "1" + "0" * 400).encode()
    signing_input = b64url_encode(b'{"alg":"EdDSA","kid":"k1","typ":"statuslist+jwt"}')
    signing_input += "." + b64url_encode(payload)
    body = signing_input + "." + b64url_encode(ISSUER.sign(signing_input.encode()))
    calls: list[str] = []
    lists = StatusListFetcher(
        fetcher_for(lambda: body, calls), lambda _h: ISSUER.public_key, clock=lambda: now[0]
    )
    assert lists.status(URI, 7) is TokenStatus.INVALID
    now[0] += 30
    assert lists.status(URI, 7) is TokenStatus.INVALID
    assert len(calls) == 1
    now[0] += 1
    lists.status(URI, 7)
    assert len(calls) == 2  # the ttl of 30.5 s passed


def test_an_untagged_cwt_list_is_rejected() -> None:
    untagged = cbor2.dumps(cbor2.loads(cwt()).value)
    lists = StatusListFetcher(
        cwt_fetcher(lambda: untagged, []), lambda _h: ISSUER.public_key, clock=lambda: float(NOW)
    )
    with pytest.raises(StatusListRejected, match="tag 18"):
        lists.status(URI, 7)
