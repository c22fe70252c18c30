"""The wallet (wallet/oid4vp.py) presents a W3C credential of the platform — a VCDM 2.0
``vc+jwt`` — to the platform's OpenID4VP verifier over its HTTP interface, in a VP-JWT
(OpenID4VP 1.0 Appendix B.1, ``jwt_vc_json``), on SQLite and PostgreSQL, for both
client-identifier prefixes and both response modes; the lender reads the subject's claims
with the response code."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from tests.e2e.test_oid4vp_wallet_verifier import MODES, PREFIXES, _present
from tests.factories import readiness_claims
from tests.integration.test_verifier_w3c import w3c_query
from tests.integration.verifier_world import BASE, CRC, VpWorld, vp

from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.wallet.store import Wallet

__all__ = ["vp"]


def _w3c_wallet(vp: VpWorld, path: Path) -> Wallet:
    wallet = Wallet.create(path, "pass")
    made = vp.http.post("/v1/identities", json={"roles": ["business"], "profile": {"name": "W"}})
    token = made.json()["identity_token"]
    issued = vp.http.post(
        "/v1/credentials",
        json={
            "type": CRC,
            "subject": token,
            "format": "vc+jwt",
            "claims": readiness_claims(token),
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


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_wallet_presents_a_w3c_credential(
    vp: VpWorld, tmp_path: Path, prefix: str, mode: str
) -> None:
    wallet = _w3c_wallet(vp, tmp_path / "wallet.json")
    created = vp.request(
        dcql_query=w3c_query("income_bracket"), client_id_prefix=prefix, response_mode=mode
    )
    outcome, shown = _present(vp, wallet, created["wallet_url"])
    ((chosen, _read),) = shown
    assert [p.query_id for p in chosen.presentations] == ["crc"]
    assert outcome.sent, vp.status(created["id"])
    assert outcome.redirect_uri is not None
    status = vp.status(created["id"])
    assert (status["decision"], status["reason"], status["discarded"]) == ("allow", None, [])
    code = parse_qs(urlsplit(outcome.redirect_uri).query)["response_code"][0]
    decided = vp.decision(created["id"], code)
    assert decided.status_code == 200, decided.text
    (credential,) = decided.json()["credentials"]
    assert (credential["format"], credential["vct"], credential["issuer"]) == (
        "jwt_vc_json",
        CRC,
        BASE,
    )
    assert "income_bracket" in credential["claims"]
