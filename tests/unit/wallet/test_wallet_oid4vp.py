"""The wallet's OpenID4VP presentation (wallet/oid4vp.py) against a fake verifier that
implements the spec (OpenID4VP 1.0 §5, §8) — not the platform: a did:web document, a
request_uri endpoint (GET, and POST echoing the wallet_nonce), a response endpoint that
decrypts, verifies the SD-JWT+KB (RFC 9901, nonce and aud = the client identifier) and
answers a redirect_uri.  Both client-identifier prefixes, both response modes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.dcql import DcqlUnsatisfiable
from credit_commons.formats.oid4vp import (
    AuthorizationRequestInvalid,
    new_response_encryption_key,
    parse_authorization_request,
    parse_authorization_response,
    sign_request_object,
)
from credit_commons.issuer.sd_jwt import issue
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.errors import DidResolutionFailed
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.verifier.sd_jwt_verify import verify
from credit_commons.wallet.oid4vp import VerifierRefused, respond
from credit_commons.wallet.store import Wallet

HOST = "verifier.example"
DID = f"did:web:{HOST}"
KID = f"{DID}#key-1"
BASE = f"https://{HOST}"
RESPONSE_URI = f"{BASE}/response"
ISSUER = PrivateKey.from_raw(KeyType.ED25519, b"\x01" * 32)
VERIFIER_KEY = PrivateKey.from_raw(KeyType.P256, bytes(31) + b"\x07")
NOW = 1_760_000_000
VCT = "https://credentials.example/identity"
DCQL = {
    "credentials": [
        {
            "id": "pid",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": [VCT]},
            "claims": [{"path": ["given_name"]}, {"path": ["address", "city"]}],
        }
    ]
}


@dataclass
class FakeVerifier:
    """A verifier as OpenID4VP 1.0 describes it, answering through httpx.MockTransport."""

    client_id: str
    response_mode: str = "direct_post"
    dcql: dict[str, Any] = field(default_factory=lambda: DCQL)
    received: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    wallet_nonces: list[str | None] = field(default_factory=list)
    tamper: Callable[[str], str] = lambda token: token

    def __post_init__(self) -> None:
        self.private_jwk, public = new_response_encryption_key("enc-1")
        params: dict[str, Any] = {
            "client_id": self.client_id,
            "response_type": "vp_token",
            "response_mode": self.response_mode,
            "response_uri": RESPONSE_URI,
            "nonce": "n-0S6_WzA2Mj",
            "state": "st-42",
            "dcql_query": self.dcql,
        }
        if self.response_mode == "direct_post.jwt":
            params["client_metadata"] = {
                "jwks": {"keys": [public]},
                "encrypted_response_enc_values_supported": ["A256GCM"],
            }
        self.params = params

    def request_object(self, wallet_nonce: str | None) -> str:
        params = {**self.params, **({"wallet_nonce": wallet_nonce} if wallet_nonce else {})}
        request = parse_authorization_request(params, signed=True)
        return self.tamper(sign_request_object(request, VERIFIER_KEY, KID))

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/did.json":
            method = {
                "id": KID,
                "type": "JsonWebKey",
                "controller": DID,
                "publicKeyJwk": public_key_to_jwk(VERIFIER_KEY.public_key),
            }
            return httpx.Response(200, json={"id": DID, "verificationMethod": [method]})
        if path == "/request":
            assert request.headers["accept"] == "application/oauth-authz-req+jwt"
            nonce = None
            if request.method == "POST":
                form = dict(parse_qsl(request.content.decode()))
                assert json.loads(form["wallet_metadata"])["vp_formats_supported"]
                nonce = form["wallet_nonce"]
            self.wallet_nonces.append(nonce)
            return httpx.Response(
                200,
                content=self.request_object(nonce),
                headers={"content-type": "application/oauth-authz-req+jwt"},
            )
        if path == "/response" and request.method == "POST":
            return self.response(dict(parse_qsl(request.content.decode())))
        return httpx.Response(404)

    def response(self, form: dict[str, str]) -> httpx.Response:
        encrypted = self.response_mode == "direct_post.jwt"
        answer = parse_authorization_response(
            form, decryption_key=self.private_jwk if encrypted else None
        )
        assert answer.state == "st-42"
        if answer.error is not None:
            self.errors.append({"error": answer.error, "description": answer.error_description})
            return httpx.Response(200, json={})
        assert answer.vp_token is not None
        for query_id, presentations in answer.vp_token.presentations.items():
            for text in presentations:
                assert isinstance(text, str)
                verified = verify(
                    text,
                    issuer_key_resolver=lambda _h, _p: ISSUER.public_key,
                    require_key_binding=True,
                    audience=self.client_id,  # §B.3.6: the client identifier, prefix included
                    nonce="n-0S6_WzA2Mj",
                    now=NOW,
                )
                self.received.append({"query": query_id, "claims": verified.payload})
        return httpx.Response(200, json={"redirect_uri": f"{BASE}/done#response_code=rc1"})

    def url(self, how: str) -> str:
        if how == "by_value":
            query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in self.params.items()}
            return "openid4vp://?" + urlencode(query)
        if how == "request":
            token = self.request_object(None)
            return "openid4vp://?" + urlencode({"client_id": self.client_id, "request": token})
        query = {"client_id": self.client_id, "request_uri": f"{BASE}/request"}
        if how == "post":
            query["request_uri_method"] = "post"
        return "openid4vp://?" + urlencode(query)


def _wallet(tmp_path: Path, claims: dict[str, Any] | None = None) -> Wallet:
    wallet = Wallet.create(tmp_path / "wallet.json", "pass", KeyType.ED25519)
    holder = wallet.holder_key
    credential = issue(
        claims
        or {
            "iss": "https://issuer.example",
            "iat": NOW - 100,
            "vct": VCT,
            "given_name": "Asha",
            "family_name": "Devi",
            "address": {"city": "Pune", "street": "MG Road 1"},
        },
        disclosable=["/given_name", "/family_name", "/address", "/address/city", "/address/street"],
        signer=ISSUER,
        header={"typ": "dc+sd-jwt"},
        holder_jwk=public_key_to_jwk(holder.public_key),
    )
    wallet.add_credential(
        credential.serialize(),
        issuer="https://issuer.example",
        configuration="identity",
        received_at="2025-01-01T00:00:00Z",
    )
    return wallet


def _run(wallet: Wallet, verifier: FakeVerifier, url: str, *, answer: bool = True) -> Any:
    transport = httpx.MockTransport(verifier.handle)
    fetcher = OutboundFetcher(transport=transport, resolver=lambda _host: ["93.184.216.34"])
    shown: list[Any] = []

    def confirm(plan: Any, read: Any) -> bool:
        shown.append((plan, read))
        return answer

    outcome = respond(
        wallet, url, confirm=confirm, fetcher=fetcher, transport=transport, now=lambda: NOW
    )
    fetcher.close()
    return outcome, shown


CLIENTS = {
    "decentralized_identifier": f"decentralized_identifier:{DID}",
    "redirect_uri": f"redirect_uri:{RESPONSE_URI}",
}


@pytest.mark.parametrize("mode", ["direct_post", "direct_post.jwt"])
@pytest.mark.parametrize(
    ("prefix", "how"),
    [
        ("decentralized_identifier", "get"),
        ("decentralized_identifier", "post"),
        ("decentralized_identifier", "request"),
        ("redirect_uri", "by_value"),
    ],
)
def test_presents(tmp_path: Path, prefix: str, how: str, mode: str) -> None:
    verifier = FakeVerifier(CLIENTS[prefix], mode)
    outcome, shown = _run(_wallet(tmp_path), verifier, verifier.url(how))
    assert outcome.sent
    assert outcome.redirect_uri == f"{BASE}/done#response_code=rc1"
    plan, read = shown[0]
    assert [(p.credential_id, p.claims) for p in plan.presentations] == [
        ("c1", ("given_name", "address.city"))
    ]
    assert read.signed_by == (KID if prefix == "decentralized_identifier" else None)
    # Exactly the selected claims were disclosed: not family_name, not address.street.
    (received,) = verifier.received
    claims = received["claims"]
    assert received["query"] == "pid"
    assert claims["given_name"] == "Asha"
    assert claims["address"] == {"city": "Pune"}
    assert "family_name" not in claims
    expected_nonce = [None] if how == "get" else [] if how in ("request", "by_value") else None
    if expected_nonce is not None:
        assert verifier.wallet_nonces == expected_nonce
    else:
        assert len(verifier.wallet_nonces) == 1
        assert verifier.wallet_nonces[0]


def test_declining_tells_the_verifier(tmp_path: Path) -> None:
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"], "direct_post.jwt")
    outcome, _ = _run(_wallet(tmp_path), verifier, verifier.url("get"), answer=False)
    assert not outcome.sent
    assert verifier.received == []
    assert verifier.errors == [{"error": "access_denied", "description": "the holder declined"}]


def test_unsatisfiable_tells_the_verifier_and_raises(tmp_path: Path) -> None:
    dcql = {"credentials": [{**DCQL["credentials"][0], "meta": {"vct_values": ["urn:other"]}}]}
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"], dcql=dcql)
    with pytest.raises(DcqlUnsatisfiable):
        _run(_wallet(tmp_path), verifier, verifier.url("get"))
    assert verifier.errors[0]["error"] == "access_denied"


def _flip_signature(token: str) -> str:
    head, body, signature = token.split(".")
    raw = bytearray(b64url_decode(signature))
    raw[0] ^= 1
    return f"{head}.{body}.{b64url_encode(bytes(raw))}"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_flip_signature, "signature"),
        (lambda t: t.replace(t.split(".")[0], b64url_encode(b'{"alg":"ES256","kid":"x"}')), "typ"),
    ],
)
def test_tampered_request_objects_refused(
    tmp_path: Path, tamper: Callable[[str], str], reason: str
) -> None:
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"])
    verifier.tamper = tamper
    with pytest.raises(AuthorizationRequestInvalid, match=reason):
        _run(_wallet(tmp_path), verifier, verifier.url("get"))
    assert verifier.received == []
    assert verifier.errors == []


def test_client_id_mismatch_and_signed_redirect_uri_refused(tmp_path: Path) -> None:
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"])
    other = "decentralized_identifier:did:web:other.example"
    url = "openid4vp://?" + urlencode({"client_id": other, "request_uri": f"{BASE}/request"})
    with pytest.raises(AuthorizationRequestInvalid, match="client_id"):
        _run(_wallet(tmp_path / "a"), verifier, url)
    # A redirect_uri client's request by reference must be unsigned.
    redirect = FakeVerifier(CLIENTS["redirect_uri"])
    token = sign_request_object(
        parse_authorization_request(verifier.params, signed=True), VERIFIER_KEY, KID
    )
    url = "openid4vp://?" + urlencode({"client_id": redirect.client_id, "request": token})
    with pytest.raises(AuthorizationRequestInvalid):
        _run(_wallet(tmp_path / "b"), redirect, url)


def test_redirect_uri_client_must_post_to_itself(tmp_path: Path) -> None:
    verifier = FakeVerifier(f"redirect_uri:{BASE}/elsewhere")
    with pytest.raises(AuthorizationRequestInvalid, match="response_uri must be the client"):
        _run(_wallet(tmp_path), verifier, verifier.url("by_value"))


def test_unresolvable_did_refused(tmp_path: Path) -> None:
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"])
    original = verifier.handle

    def no_did(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/did.json":
            return httpx.Response(404)
        return original(request)

    verifier.handle = no_did  # type: ignore[method-assign]
    with pytest.raises(DidResolutionFailed):
        _run(_wallet(tmp_path), verifier, verifier.url("get"))


def test_verifier_refusal_is_reported(tmp_path: Path) -> None:
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"])
    original = verifier.handle

    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/response":
            return httpx.Response(400, json={"error": "invalid_request"})
        return original(request)

    verifier.handle = refuse  # type: ignore[method-assign]
    with pytest.raises(VerifierRefused, match="invalid_request"):
        _run(_wallet(tmp_path), verifier, verifier.url("get"))


def test_request_uri_method_must_be_get_or_post(tmp_path: Path) -> None:
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"])
    url = verifier.url("get") + "&request_uri_method=PUT"
    with pytest.raises(AuthorizationRequestInvalid) as e:
        _run(_wallet(tmp_path), verifier, url)
    assert e.value.error == "invalid_request_uri_method"
