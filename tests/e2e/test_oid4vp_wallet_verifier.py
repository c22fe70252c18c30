"""The wallet (wallet/oid4vp.py) against the platform's OpenID4VP verifier, through its HTTP
interface, on SQLite and PostgreSQL: a lender makes a request; the wallet takes the
``wallet_url`` the verifier hands out, reads the request (by value for ``redirect_uri:``,
the signed request object at ``request_uri`` for ``decentralized_identifier:``, verified
under the key of the platform's ``did:web``), matches the DCQL query, presents only what is
asked and posts ``direct_post`` or the encrypted ``direct_post.jwt``; the lender reads the
decision with the response code the wallet was redirected with.

The wallet reaches the platform through the test client's transport (the platform is
``https://commons.test``, so its ``did:web:commons.test`` resolves to the app itself); the
wallet's own guard, resolver and HTTP client are the real ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.factories import readiness_claims
from tests.integration.verifier_world import BASE, CRC, VpWorld, crc_query, vp

from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.dcql import DcqlUnsatisfiable
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.wallet.oid4vp import PresentationPlan, ReadRequest, respond
from credit_commons.wallet.store import Wallet

__all__ = ["vp"]

PREFIXES = ["decentralized_identifier", "redirect_uri"]
MODES = ["direct_post", "direct_post.jwt"]


def _wallet(vp: VpWorld, path: Path, score: int = 702) -> Wallet:
    """A wallet holding a Credit Readiness Credential of the platform (with ``score``),
    bound to its key."""
    wallet = Wallet.create(path, "pass")
    made = vp.http.post("/v1/identities", json={"roles": ["business"], "profile": {"name": "M"}})
    assert made.status_code == 201, made.text
    token = made.json()["identity_token"]
    issued = vp.http.post(
        "/v1/credentials",
        json={
            "type": CRC,
            "subject": token,
            "claims": readiness_claims(token, score),
            "holder_jwk": public_key_to_jwk(wallet.holder_key.public_key),
        },
        headers=vp.admin,
    )
    assert issued.status_code == 201, issued.text
    wallet.add_credential(
        issued.json()["credential"],
        issuer=BASE,
        configuration=CRC,
        received_at=datetime.now(UTC).isoformat(),
    )
    return wallet


class _App(httpx.BaseTransport):
    # The test client's transport into the app, its answers re-wrapped as plain httpx
    # responses (the wallet's own httpx.Client insists on a sync byte stream).
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self._inner.handle_request(request)
        body = answer.read()
        return httpx.Response(answer.status_code, headers=answer.headers, content=body)


def _present(
    vp: VpWorld, wallet: Wallet, url: str, *, answer: bool = True
) -> tuple[Any, list[tuple[PresentationPlan, ReadRequest]]]:
    transport = _App(vp.http._transport)  # the app, in process
    # commons.test does not resolve; the guard is given a public address for it.
    fetcher = OutboundFetcher(transport=transport, resolver=lambda _host: ["93.184.216.34"])
    shown: list[tuple[PresentationPlan, ReadRequest]] = []

    def confirm(chosen: PresentationPlan, read: ReadRequest) -> bool:
        shown.append((chosen, read))
        return answer

    try:
        outcome = respond(
            wallet, url, confirm=confirm, fetcher=fetcher, transport=transport, now=vp.now
        )
    finally:
        fetcher.close()
    return outcome, shown


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_wallet_presents_to_the_verifier(
    vp: VpWorld, tmp_path: Path, prefix: str, mode: str
) -> None:
    wallet = _wallet(vp, tmp_path / "wallet.json")
    created = vp.request(client_id_prefix=prefix, response_mode=mode)
    outcome, shown = _present(vp, wallet, created["wallet_url"])
    # What the holder was shown: the verifier, how it was authenticated, what goes.
    ((chosen, read),) = shown
    assert chosen.verifier == created["client_id"]
    if prefix == "decentralized_identifier":
        assert read.signed_by is not None
        assert read.signed_by.startswith("did:web:commons.test#")
    else:
        assert read.signed_by is None
    assert [(p.query_id, p.claims) for p in chosen.presentations] == [("crc", ("income_bracket",))]
    # The verifier allowed it, and hands the lender exactly the disclosed claim.
    assert outcome.sent
    assert outcome.redirect_uri is not None
    assert outcome.redirect_uri.startswith("https://lender.example/done?response_code=")
    code = parse_qs(urlsplit(outcome.redirect_uri).query)["response_code"][0]
    status = vp.status(created["id"])
    assert (status["state"], status["decision"], status["reason"]) == ("decided", "allow", None)
    decided = vp.decision(created["id"], code)
    assert decided.status_code == 200, decided.text
    (credential,) = decided.json()["credentials"]
    assert credential["query_id"] == "crc"
    assert credential["claims"]["income_bracket"] == "5L-25L"
    assert "debt_ratio_bracket" not in credential["claims"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_claim_sets_choose_the_first_option_the_wallet_meets(
    vp: VpWorld, tmp_path: Path, prefix: str
) -> None:
    wallet = _wallet(vp, tmp_path / "wallet.json")
    query = crc_query("income_bracket", "debt_ratio_bracket")
    credential_query = query["credentials"][0]
    credential_query["claims"] = [
        {"id": "missing", "path": ["no_such_claim"]},
        {"id": "debt", "path": ["debt_ratio_bracket"]},
    ]
    credential_query["claim_sets"] = [["missing"], ["debt"]]
    created = vp.request(client_id_prefix=prefix, dcql_query=query)
    outcome, shown = _present(vp, wallet, created["wallet_url"])
    assert shown[0][0].presentations[0].claims == ("debt_ratio_bracket",)
    assert outcome.redirect_uri is not None
    code = parse_qs(urlsplit(outcome.redirect_uri).query)["response_code"][0]
    (credential,) = vp.decision(created["id"], code).json()["credentials"]
    assert "debt_ratio_bracket" in credential["claims"]
    assert "income_bracket" not in credential["claims"]


@pytest.mark.parametrize("mode", MODES)
def test_declining_is_a_denial_the_verifier_records(vp: VpWorld, tmp_path: Path, mode: str) -> None:
    wallet = _wallet(vp, tmp_path / "wallet.json")
    created = vp.request(client_id_prefix="decentralized_identifier", response_mode=mode)
    outcome, _ = _present(vp, wallet, created["wallet_url"], answer=False)
    assert not outcome.sent
    # The verifier takes the wallet's access_denied as a denial of the transaction.
    status = vp.status(created["id"])
    assert (status["state"], status["decision"]) == ("decided", "deny")


def test_nothing_to_present(vp: VpWorld, tmp_path: Path) -> None:
    wallet = _wallet(vp, tmp_path / "wallet.json")
    query = crc_query()
    query["credentials"][0]["meta"] = {"vct_values": ["https://other.example/vct"]}
    created = vp.request(client_id_prefix="redirect_uri", dcql_query=query)
    with pytest.raises(DcqlUnsatisfiable):
        _present(vp, wallet, created["wallet_url"])
    status = vp.status(created["id"])
    assert (status["state"], status["decision"]) == ("decided", "deny")
