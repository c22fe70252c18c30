"""A verifier as OpenID4VP 1.0 describes it (§5, §8) — not the platform — for the wallet's
tests: a did:web document, a request_uri endpoint (GET, and POST echoing the wallet_nonce),
and a response endpoint that decrypts, verifies the SD-JWT+KB (RFC 9901: nonce, and aud =
the client identifier) and answers a redirect_uri; plus a wallet holding one SD-JWT VC."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.oid4vp import (
    new_response_encryption_key,
    parse_authorization_request,
    parse_authorization_response,
    sign_request_object,
)
from credit_commons.issuer.sd_jwt import issue
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.verifier.sd_jwt_verify import verify
from credit_commons.wallet.oid4vp import respond
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


def wallet_with_credential(tmp_path: Path, claims: dict[str, Any] | None = None) -> Wallet:
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
    wallet.save()
    return wallet


def run(wallet: Wallet, verifier: FakeVerifier, url: str, *, answer: bool = True) -> Any:
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
