"""The OpenID4VP verifier over HTTP (SQLite and PostgreSQL): a lender makes a request, a
wallet reads it — by value (``redirect_uri:``) or as the signed request object of the
platform's did:web (``decentralized_identifier:``) — and answers with ``direct_post`` or the
encrypted ``direct_post.jwt``; the verifier reads the status and, once, with the response
code, the disclosed claims.  SD-JWT VCs minted by the independent ``sd-jwt`` package under a
trusted issuer's key are accepted, under an untrusted one refused with the uniform denial."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from tests.integration.verifier_world import VpWorld, vp

__all__ = ["vp"]

PREFIXES = ["decentralized_identifier", "redirect_uri"]
MODES = ["direct_post", "direct_post.jwt"]


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
