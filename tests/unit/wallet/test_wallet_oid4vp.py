"""The wallet's OpenID4VP presentation (wallet/oid4vp.py) against a fake verifier that
implements the spec (OpenID4VP 1.0 §5, §8) — not the platform: a did:web document, a
request_uri endpoint (GET, and POST echoing the wallet_nonce), a response endpoint that
decrypts, verifies the SD-JWT+KB (RFC 9901, nonce and aud = the client identifier) and
answers a redirect_uri.  Both client-identifier prefixes, both response modes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from tests.unit.wallet.oid4vp_fakes import (
    BASE,
    CLIENTS,
    DCQL,
    KID,
    VERIFIER_KEY,
    FakeVerifier,
    run,
    wallet_with_credential,
)

from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.core.net import FetchFailed, OutboundFetcher
from credit_commons.formats.dcql import DcqlUnsatisfiable
from credit_commons.formats.jws import sign_compact, verify_compact
from credit_commons.formats.oid4vp import (
    AuthorizationRequestInvalid,
    parse_authorization_request,
    sign_request_object,
)
from credit_commons.keys import PrivateKey, encode_did_key
from credit_commons.keys.errors import DidResolutionFailed
from credit_commons.wallet.oid4vp import VerifierRefused, build_vp_token, plan, respond
from credit_commons.wallet.store import Wallet


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
    outcome, shown = run(wallet_with_credential(tmp_path), verifier, verifier.url(how))
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
    outcome, _ = run(wallet_with_credential(tmp_path), verifier, verifier.url("get"), answer=False)
    assert not outcome.sent
    assert verifier.received == []
    assert verifier.errors == [{"error": "access_denied", "description": None}]


# A query the wallet's credential meets except for one value: given_name is Asha.
_MISMATCH = {
    "credentials": [
        {**DCQL["credentials"][0], "claims": [{"path": ["given_name"], "values": ["Ravi"]}]}
    ]
}


@pytest.mark.parametrize("mode", ["direct_post", "direct_post.jwt"])
def test_a_value_mismatch_looks_like_a_decline(tmp_path: Path, mode: str) -> None:
    # §15.4.1: the verifier "cannot distinguish between the case where an End-User did not
    # consent to releasing the Credential and the case where the claim value did not match",
    # and "all requests, even if no response can be sent ... due to a values mismatch,
    # require some form of End-User interaction before a response is sent".
    declined = FakeVerifier(CLIENTS["decentralized_identifier"], mode)
    run(wallet_with_credential(tmp_path / "a"), declined, declined.url("get"), answer=False)
    mismatched = FakeVerifier(CLIENTS["decentralized_identifier"], mode, dcql=_MISMATCH)
    with pytest.raises(DcqlUnsatisfiable):
        run(wallet_with_credential(tmp_path / "b"), mismatched, mismatched.url("get"))
    assert mismatched.errors == declined.errors == [{"error": "access_denied", "description": None}]


def test_nothing_is_sent_before_the_holder_is_asked(tmp_path: Path) -> None:
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"], dcql=_MISMATCH)
    asked: list[Any] = []

    def confirm(chosen: Any, read: Any) -> bool:
        asked.append(chosen)
        assert verifier.errors == []  # not told yet
        return False  # the holder does not want the verifier told anything

    transport = httpx.MockTransport(verifier.handle)
    fetcher = OutboundFetcher(transport=transport, resolver=lambda _host: ["93.184.216.34"])
    with pytest.raises(DcqlUnsatisfiable):
        respond(
            wallet_with_credential(tmp_path),
            verifier.url("get"),
            confirm=confirm,
            fetcher=fetcher,
            transport=transport,
        )
    fetcher.close()
    # The holder was shown the request with nothing to present, and nothing was sent.
    ((chosen,),) = [asked]
    assert chosen.presentations == ()
    assert chosen.verifier == verifier.client_id
    assert verifier.errors == []


def test_unsatisfiable_tells_the_verifier_when_the_holder_agrees(tmp_path: Path) -> None:
    dcql = {"credentials": [{**DCQL["credentials"][0], "meta": {"vct_values": ["urn:other"]}}]}
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"], dcql=dcql)
    with pytest.raises(DcqlUnsatisfiable):
        run(wallet_with_credential(tmp_path), verifier, verifier.url("get"))
    assert verifier.errors == [{"error": "access_denied", "description": None}]


def test_the_verifiers_answer_is_read_up_to_a_bound(tmp_path: Path) -> None:
    # A verifier cannot make the wallet read an unbounded answer: past 256 KiB the wallet
    # stops reading and reports the failure (a valid JSON object, had it been read whole).
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"])
    original = verifier.handle

    def huge(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/response":
            original(request)
            padding = "x" * (256 * 1024)
            return httpx.Response(200, json={"redirect_uri": f"{BASE}/done", "pad": padding})
        return original(request)

    verifier.handle = huge  # type: ignore[method-assign]
    with pytest.raises(FetchFailed, match="too large"):
        run(wallet_with_credential(tmp_path), verifier, verifier.url("get"))
    assert len(verifier.received) == 1  # sent, and the answer refused


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
        run(wallet_with_credential(tmp_path), verifier, verifier.url("get"))
    assert verifier.received == []
    assert verifier.errors == []


def test_client_id_mismatch_and_signed_redirect_uri_refused(tmp_path: Path) -> None:
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"])
    other = "decentralized_identifier:did:web:other.example"
    url = "openid4vp://?" + urlencode({"client_id": other, "request_uri": f"{BASE}/request"})
    with pytest.raises(AuthorizationRequestInvalid, match="client_id"):
        run(wallet_with_credential(tmp_path / "a"), verifier, url)
    # A redirect_uri client's request by reference must be unsigned.
    redirect = FakeVerifier(CLIENTS["redirect_uri"])
    token = sign_request_object(
        parse_authorization_request(verifier.params, signed=True), VERIFIER_KEY, KID
    )
    url = "openid4vp://?" + urlencode({"client_id": redirect.client_id, "request": token})
    with pytest.raises(AuthorizationRequestInvalid):
        run(wallet_with_credential(tmp_path / "b"), redirect, url)


def test_redirect_uri_client_must_post_to_itself(tmp_path: Path) -> None:
    verifier = FakeVerifier(f"redirect_uri:{BASE}/elsewhere")
    with pytest.raises(AuthorizationRequestInvalid, match="response_uri must be the client"):
        run(wallet_with_credential(tmp_path), verifier, verifier.url("by_value"))


def test_unresolvable_did_refused(tmp_path: Path) -> None:
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"])
    original = verifier.handle

    def no_did(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/did.json":
            return httpx.Response(404)
        return original(request)

    verifier.handle = no_did  # type: ignore[method-assign]
    with pytest.raises(DidResolutionFailed):
        run(wallet_with_credential(tmp_path), verifier, verifier.url("get"))


def test_verifier_refusal_is_reported(tmp_path: Path) -> None:
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"])
    original = verifier.handle

    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/response":
            return httpx.Response(400, json={"error": "invalid_request"})
        return original(request)

    verifier.handle = refuse  # type: ignore[method-assign]
    with pytest.raises(VerifierRefused, match="invalid_request"):
        run(wallet_with_credential(tmp_path), verifier, verifier.url("get"))


def test_request_uri_method_must_be_get_or_post(tmp_path: Path) -> None:
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"])
    url = verifier.url("get") + "&request_uri_method=PUT"
    with pytest.raises(AuthorizationRequestInvalid) as e:
        run(wallet_with_credential(tmp_path), verifier, url)
    assert e.value.error == "invalid_request_uri_method"


@pytest.mark.parametrize("client_id", ["example-client", "x509_san_dns:verifier.example"])
def test_unauthenticatable_clients_refused_before_any_fetch(tmp_path: Path, client_id: str) -> None:
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"])
    url = "openid4vp://?" + urlencode({"client_id": client_id, "request_uri": f"{BASE}/request"})
    with pytest.raises(AuthorizationRequestInvalid):
        run(wallet_with_credential(tmp_path), verifier, url)
    assert verifier.wallet_nonces == []  # the request_uri was never fetched


@pytest.mark.parametrize("status", [400, 404, 429])
def test_a_verifier_refusing_the_decline_is_a_failure(tmp_path: Path, status: int) -> None:
    # §8.2: a Response URI that processed an Authorization Error Response "MUST respond with
    # an HTTP status code of 200"; anything else says the verifier was not told, and the
    # holder hears so (VerifierRefused, exit 9) instead of "declined; it was told".
    verifier = FakeVerifier(CLIENTS["decentralized_identifier"])
    original = verifier.handle

    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/response":
            return httpx.Response(status, json={"error": "invalid_request"})
        return original(request)

    verifier.handle = refuse  # type: ignore[method-assign]
    with pytest.raises(VerifierRefused, match="invalid_request"):
        run(wallet_with_credential(tmp_path), verifier, verifier.url("get"), answer=False)


def test_a_decline_answered_200_with_a_redirect_is_followed(tmp_path: Path) -> None:
    verifier = FakeVerifier(CLIENTS["redirect_uri"])
    original = verifier.response

    def processed(form: dict[str, str]) -> httpx.Response:
        original(form)
        return httpx.Response(200, json={"redirect_uri": f"{BASE}/declined"})

    verifier.response = processed  # type: ignore[method-assign]
    outcome, _ = run(
        wallet_with_credential(tmp_path), verifier, verifier.url("by_value"), answer=False
    )
    assert (outcome.sent, outcome.redirect_uri) == (False, f"{BASE}/declined")
    assert verifier.errors == [{"error": "access_denied", "description": None}]


def test_a_vc_jwt_is_presented_in_a_vp_jwt(tmp_path: Path) -> None:
    # §B.1.3.1.5: a VP-JWT signed by the holder, nonce and aud = the client identifier.
    wallet = Wallet.create(tmp_path / "wallet.json", "pass")
    holder_did = encode_did_key(wallet.holder_key.public_key)
    vc = {
        "iss": "did:web:issuer.example",
        "sub": holder_did,
        "vc": {"type": ["VerifiableCredential", "IDCredential"], "credentialSubject": {"a": 1}},
    }
    credential = sign_compact({"typ": "JWT"}, vc, PrivateKey.generate())
    wallet.add_credential(
        credential, issuer="did:web:issuer.example", configuration="id", received_at="t"
    )
    dcql = {
        "credentials": [
            {
                "id": "idc",
                "format": "jwt_vc_json",
                "meta": {"type_values": [["IDCredential"]]},
                "claims": [{"path": ["credentialSubject", "a"], "values": [1]}],
            }
        ]
    }
    request = parse_authorization_request(
        FakeVerifier(CLIENTS["redirect_uri"], dcql=dcql).params, signed=False
    )
    chosen = plan(wallet, request)
    assert chosen.presentations[0].claims == ("credentialSubject.a = 1",)  # what is shown
    token = build_vp_token(wallet, chosen, iat=1234)
    (vp_jwt,) = token.presentations["idc"]
    assert isinstance(vp_jwt, str)
    payload = verify_compact(vp_jwt, wallet.holder_key.public_key, typ="JWT", algs=["EdDSA"])
    assert (payload["aud"], payload["nonce"], payload["iat"]) == (
        request.client_id,
        request.nonce,
        1234,
    )
    assert payload["iss"] == holder_did
    assert payload["vp"]["verifiableCredential"] == [credential]
