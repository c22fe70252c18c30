"""The OpenID4VP verifier over HTTP (SQLite and PostgreSQL): a lender makes a request, a
wallet reads it — by value (``redirect_uri:``) or as the signed request object of the
platform's did:web (``decentralized_identifier:``) — and answers with ``direct_post`` or the
encrypted ``direct_post.jwt``; the verifier reads the status and, once, with the response
code, the disclosed claims.  SD-JWT VCs minted by the independent ``sd-jwt`` package under a
trusted issuer's key are accepted, under an untrusted one refused with the uniform denial."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from tests.integration.verifier_world import BASE, VpWorld, crc_query, vp

from credit_commons.demo import lender_token
from credit_commons.formats import oid4vp
from credit_commons.keys import encode_did_key
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import private_key_to_jwk, public_key_to_jwk

__all__ = ["vp"]

PREFIXES = ["decentralized_identifier", "redirect_uri"]
MODES = ["direct_post", "direct_post.jwt"]
THEIR_VCT = "https://coop.example/vct/membership/v1"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_platform_credential_is_accepted(vp: VpWorld, prefix: str, mode: str) -> None:
    holder = vp.holder()
    created = vp.request(client_id_prefix=prefix, response_mode=mode)
    request = vp.wallet_request(created)
    assert request.client_id == created["client_id"]
    assert request.client_id.startswith(prefix + ":")
    shown = vp.presentation(holder, request)
    answered = vp.respond(created, request, {"crc": [shown]})
    assert answered.status_code == 200, answered.text
    redirect = answered.json()["redirect_uri"]
    assert redirect.startswith("https://lender.example/done?response_code=")
    code = parse_qs(urlsplit(redirect).query)["response_code"][0]
    status = vp.status(created["id"])
    assert (status["state"], status["decision"], status["reason"]) == ("decided", "allow", None)
    got = vp.decision(created["id"], code)
    assert got.status_code == 200, got.text
    (credential,) = got.json()["credentials"]
    assert credential["query_id"] == "crc"
    assert credential["claims"]["income_bracket"] == "5L-25L"
    assert "debt_ratio_bracket" not in credential["claims"]
    # Once only, and only with the code.
    assert vp.decision(created["id"], code).status_code == 404


def _their_credential(issuer: PrivateKey, holder: PrivateKey) -> str:
    # Minted by the independent sd-jwt package (sd-jwt-python on jwcrypto), not by us.
    claims = {
        "iss": encode_did_key(issuer.public_key),
        "iat": int(time.time()),
        "vct": THEIR_VCT,
        SDObj("member"): "yes",
        SDObj("district"): "Nashik",
    }
    minted = SDJWTIssuer(
        claims,
        JWK(**private_key_to_jwk(issuer)),
        JWK(**private_key_to_jwk(holder)),
        sign_alg="ES256",
        extra_header_parameters={"typ": "dc+sd-jwt"},
    )
    return str(minted.sd_jwt_issuance)


def _their_presentation(credential: str, holder: PrivateKey, nonce: str, aud: str) -> str:
    wallet = SDJWTHolder(credential)
    wallet.create_presentation(
        {"member": True}, nonce, aud, JWK(**private_key_to_jwk(holder)), "ES256"
    )
    return str(wallet.sd_jwt_presentation)


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_an_independently_minted_credential(
    vp: VpWorld, prefix: str, mode: str, trusted: bool
) -> None:
    issuer, holder = PrivateKey.generate(KeyType.P256), PrivateKey.generate(KeyType.P256)
    if trusted:
        added = vp.http.post(
            "/v1/admin/trusted-issuers",
            json={"issuer": encode_did_key(issuer.public_key)},
            headers=vp.admin,
        )
        assert added.status_code == 201, added.text
    query = {
        "credentials": [
            {
                "id": "membership",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [THEIR_VCT]},
                "claims": [{"path": ["member"]}],
            }
        ]
    }
    created = vp.request(client_id_prefix=prefix, response_mode=mode, dcql_query=query)
    request = vp.wallet_request(created)
    shown = _their_presentation(
        _their_credential(issuer, holder), holder, request.nonce, request.client_id
    )
    answered = vp.respond(created, request, {"membership": [shown]})
    status = vp.status(created["id"])
    if not trusted:
        assert answered.status_code == 400
        assert answered.json() == {"error": "not_allowed"}
        assert (status["decision"], status["reason"]) == ("deny", "issuer_not_trusted")
        return
    assert answered.status_code == 200, answered.text
    code = parse_qs(urlsplit(answered.json()["redirect_uri"]).query)["response_code"][0]
    (credential,) = vp.decision(created["id"], code).json()["credentials"]
    assert credential["claims"]["member"] == "yes"
    assert "district" not in credential["claims"]
    assert credential["issuer"] == encode_did_key(issuer.public_key)


def test_the_request_object_by_post_carries_the_wallet_nonce(vp: VpWorld) -> None:
    # OpenID4VP 1.0 §5.10: request_uri_method=post, the wallet's nonce in the signed object.
    created = vp.request()
    path = created["request_uri"].removeprefix(BASE)
    fetched = vp.http.post(path, data={"wallet_nonce": "wn-0123456789abcdef"})
    assert fetched.status_code == 200, fetched.text
    request = oid4vp.read_request_object(
        fetched.text, vp.did_key, client_id=created["client_id"], wallet_nonce="wn-0123456789abcdef"
    )
    assert request.wallet_nonce == "wn-0123456789abcdef"
    with pytest.raises(oid4vp.AuthorizationRequestInvalid):
        oid4vp.read_request_object(
            fetched.text, vp.did_key, client_id=created["client_id"], wallet_nonce="another"
        )
    # Not a form: refused as a bad request; a redirect_uri: request has no request object.
    assert vp.http.post(path, content=b"{}").status_code == 422
    by_value = vp.request(client_id_prefix="redirect_uri")
    assert by_value["request_uri"] is None
    assert vp.http.get(f"/v1/verifier/requests/{by_value['id']}/request.jwt").status_code == 404


def test_another_verifier_sees_nothing_of_a_request(vp: VpWorld) -> None:
    created = vp.request()
    other_key = PrivateKey.generate(KeyType.ED25519)
    made = vp.http.post(
        "/v1/admin/lenders",
        json={
            "name": "Other Bank",
            "jwks": {"keys": [public_key_to_jwk(other_key.public_key)]},
            "allowed_purposes": ["loan.underwriting"],
        },
        headers=vp.admin,
    )
    other = lender_token(vp.http, BASE, made.json()["client_id"], other_key, now=vp.now())
    headers = {"Authorization": f"Bearer {other}"}
    assert vp.http.get(f"/v1/verifier/requests/{created['id']}", headers=headers).status_code == 404
    decision = vp.http.post(
        f"/v1/verifier/requests/{created['id']}/decision",
        json={"response_code": "x" * 43},
        headers=headers,
    )
    assert decision.status_code == 404
    assert vp.http.get(f"/v1/verifier/requests/{created['id']}").status_code == 401


@pytest.mark.parametrize("answered_by", ["named", "other"])
def test_a_did_trusted_authority_over_http(vp: VpWorld, answered_by: str) -> None:
    # DCQL trusted_authorities of type did (this platform's extension, §6.1.1): the query
    # names issuer X.  Both X and Y are on the trust list; Y's credential satisfies every
    # other part of the query but not the authority, so it is refused (dcql_unsatisfied),
    # X's accepted.
    named, other = PrivateKey.generate(KeyType.P256), PrivateKey.generate(KeyType.P256)
    holder = PrivateKey.generate(KeyType.P256)
    for issuer in (named, other):
        added = vp.http.post(
            "/v1/admin/trusted-issuers",
            json={"issuer": encode_did_key(issuer.public_key)},
            headers=vp.admin,
        )
        assert added.status_code == 201, added.text
    query = {
        "credentials": [
            {
                "id": "membership",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [THEIR_VCT]},
                "trusted_authorities": [
                    {"type": "did", "values": [encode_did_key(named.public_key)]}
                ],
                "claims": [{"path": ["member"]}],
            }
        ]
    }
    created = vp.request(dcql_query=query)
    request = vp.wallet_request(created)
    issuer = named if answered_by == "named" else other
    shown = _their_presentation(
        _their_credential(issuer, holder), holder, request.nonce, request.client_id
    )
    answered = vp.respond(created, request, {"membership": [shown]})
    status = vp.status(created["id"])
    if answered_by == "other":
        assert answered.status_code == 400
        assert answered.json() == {"error": "not_allowed"}
        assert (status["decision"], status["reason"]) == ("deny", "dcql_unsatisfied")
        assert vp.events()[-1]["reason"] == "dcql_unsatisfied"
        return
    assert answered.status_code == 200, answered.text
    assert (status["decision"], status["reason"]) == ("allow", None)
    code = parse_qs(urlsplit(answered.json()["redirect_uri"]).query)["response_code"][0]
    (credential,) = vp.decision(created["id"], code).json()["credentials"]
    assert credential["issuer"] == encode_did_key(named.public_key)


def test_the_verifier_routes_authenticate_the_lender_first(vp: VpWorld) -> None:
    # The request and decision routes authenticate in their one worker thread: no token,
    # a forged one, or one of a suspended client is 401, nothing is made or read, and the
    # denial names the route's operation as every lender route's does.
    created = vp.request()
    body = {"dcql_query": crc_query(), "redirect_uri": "https://lender.example/done"}
    token = vp.token()["Authorization"].split()[1]
    forged = {"Authorization": f"Bearer {token[:-2]}{'B' if token[-2] == 'A' else 'A'}{token[-1]}"}
    for headers in ({}, forged):
        assert vp.http.post("/v1/verifier/requests", json=body, headers=headers).status_code == 401
        decided = vp.http.post(
            f"/v1/verifier/requests/{created['id']}/decision",
            json={"response_code": "x" * 43},
            headers=headers,
        )
        assert decided.status_code == 401
    # Refusals that name nobody are counted by operation and reason (gateway/denials.py).
    metrics = vp.http.get("/metrics").text
    for operation in ("lender.create-request", "lender.request-decision"):
        for reason in ("auth.token_missing", "auth.token_invalid"):
            line = (
                "commons_access_denials_unattributed_total"
                f'{{operation="{operation}",reason="{reason}"}} 1.0'
            )
            assert line in metrics, line
    # With a valid token the same calls pass authentication (the decision is not there).
    made = vp.http.post("/v1/verifier/requests", json=body, headers=vp.token())
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    assert "lender-api.client" in made.headers["ratelimit-policy"]  # the client was counted
