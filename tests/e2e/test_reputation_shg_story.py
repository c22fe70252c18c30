"""Issue 19's SHG story against a real `commons serve` on SQLite and PostgreSQL, through the
HTTP API and the wallet CLI: six members receive KycCredentials over OID4VCI and join, five
vouch for one within their budget, a checkpoint lands and is scored, the member reaches
silver and receives the CommunityTierCredential in her wallet; her score bundle verifies
offline (`commons score verify`: the reference recompute matches the served record's hash)
and she proves score ≥ 25 in zero knowledge (`community_score_at_least`) to a verifier;
a Credit Readiness Credential issued to her key carries the tier, and a lender with her
consent to `/community_tier` sees the tier and nothing of the score."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from tests.e2e.test_wallet_consent_e2e import lender
from tests.e2e.test_wallet_e2e import cli, platform  # noqa: F401 - the fixture
from tests.e2e.test_zk_kyc_shg_cli import _answer, _ask, _decision, _prove
from tests.factories import readiness_claims
from tests.reputation_story import CTX, member_with_tier

from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.issuer.catalogue import verify_score_opening
from credit_commons.keys import PrivateKey, decode_did_key, public_key_to_jwk
from credit_commons.reputation.capability import sign_subject_proof
from credit_commons.wallet.held import held_facts
from credit_commons.wallet.store import StoredCredential


def _claims(text: str) -> dict[str, Any]:
    return dict(held_facts(StoredCredential("c", "https://x", "x", text, "now")).claims)


def test_the_shg_story(
    platform: tuple[str, dict[str, str]],  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    base, env = platform
    with httpx.Client(base_url=base, timeout=10) as http:
        holder = member_with_tier(base, env, tmp_path, http)
        asha, asha_did, asha_person = holder.wallet, holder.did, holder.person
        admin = holder.admin
        assert holder.tiers == ["silver"]
        again: Any = cli(asha, "wallet", "capabilities", "--ctx", CTX)
        assert again["received"] == []  # kept once
        held: Any = cli(asha, "wallet", "list")
        assert holder.local_id in [c["id"] for c in held]

        # The served bundle recomputes offline to the same record; its score and tier are
        # shown to her alone (her Subject-Proof), hidden from anyone else who knows her DID.
        # The first fetch requests the bundle (202); a worker pass builds it off the request
        # path; fetch again until it is served (bounded).
        for _ in range(3):
            public = http.get("/v1/scores", params={"did": asha_did, "ctx": CTX})
            if public.status_code != 202:
                break
            assert int(public.headers["Retry-After"]) > 0
            cli(env, "log", "checkpoint", "--publish")
        assert public.status_code == 200, public.text
        assert public.json()["record"]["tier"] != "silver"
        proof = sign_subject_proof(
            _holder_key(asha), did=asha_did, ctx=CTX, audience=str(http.base_url).rstrip("/"),
            iat=int(datetime.now(UTC).timestamp()),
        )  # fmt: skip
        served = http.get(
            "/v1/scores", params={"did": asha_did, "ctx": CTX}, headers={"Subject-Proof": proof}
        )
        assert served.status_code == 200, served.text
        bundle = served.json()
        (tmp_path / "bundle.json").write_bytes(served.content)
        (tmp_path / "scores-jwks.json").write_bytes(http.get("/v1/scores/jwks").content)
        verified: Any = cli(
            env, "score", "verify", str(tmp_path / "bundle.json"),
            "--scores-jwks", str(tmp_path / "scores-jwks.json"),
        )  # fmt: skip
        assert verified["valid"] is True
        assert verified["recordHash"] == bundle["recordHash"]
        assert (verified["tier"], verified["did"]) == ("silver", asha_did)

        # The capability credential certifies that record: tier, rule set, day, and the
        # committed score whose opening (a Disclosure the wallet keeps) is the record's.
        wallet_doc = _wallet_credentials(asha)
        text = wallet_doc[-1]
        sd_jwt = SdJwt.parse(text)
        assert sd_jwt.payload["cnf"]["jwk"] == public_key_to_jwk(decode_did_key(asha_did))
        assert (sd_jwt.payload["tier"], sd_jwt.payload["ctx"]) == ("silver", CTX)
        assert sd_jwt.payload["rule_set"]["hash"] == bundle["record"]["ruleSet"]["hash"]
        assert sd_jwt.payload["as_of"] == bundle["asOf"]
        score = verify_score_opening(
            sd_jwt.payload["score_commitment"], _claims(text)["score_opening"]
        )
        assert f"{score // 10**6}.{score % 10**6:06d}" == verified["score"]

        # Score ≥ 25 (silver's minimum) in zero knowledge: the verifier accepts and sees no
        # score; ≥ her score + 1 has no proof.
        local = holder.local_id
        bank, _ = lender(base, env)
        as_bank = {"Authorization": bank.headers["Authorization"]}
        statement = "community_score_at_least"
        asked = _ask(http, as_bank, sd_jwt.payload["vct"], statement, {"threshold": 25_000_000})
        proved = _prove(asha, base, local, statement, asked, "threshold=25000000")
        assert proved.returncode == 0, proved.stderr
        assert str(score) not in proved.stdout
        _answer(http, asha, local, asked, json.loads(proved.stdout))
        assert _decision(http, as_bank, asked) == ("allow", None)
        above = f"threshold={score + 1}"
        higher = _ask(http, as_bank, sd_jwt.payload["vct"], statement, {"threshold": score + 1})
        unprovable = _prove(asha, base, local, statement, higher, above)
        assert unprovable.returncode != 0
        assert "wallet.predicate_unprovable" in unprovable.stderr

        # A Credit Readiness Credential issued to her key carries the tier.
        issued = http.post(
            "/v1/credentials",
            json={
                "type": "CreditReadinessCredential",
                "subject": asha_person,
                "claims": readiness_claims(asha_person, 702),
                "holder_jwk": public_key_to_jwk(decode_did_key(asha_did)),
            },
            headers=admin,
        )
        assert issued.status_code == 201, issued.text

        # A lender asks for the tier only; she approves from her wallet; the lender sees it.
        try:
            asked = bank.post(
                "/v1/consents",
                json={
                    "template": "loan_underwriting",
                    "borrower": asha_person,
                    "purpose": "105",
                    "consent_expiry": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
                    "scopes": [
                        {"type": "CreditReadinessCredential", "claims": ["/community_tier"]}
                    ],
                },
            )
            assert asked.status_code == 201, asked.text
            consent_id = asked.json()["consent_id"]
            approved: Any = cli(asha, "wallet", "consent", "approve", consent_id)
            assert approved["status"] == "ACTIVE"
            got = bank.get("/v1/lender/credentials", params={"consent_id": consent_id})
            assert got.status_code == 200, got.text
        finally:
            bank.close()
    seen = got.json()
    assert seen["disclosed"] == ["/community_tier"]
    shown = _claims(seen["credential"])
    assert shown["community_tier"]["tier"] == "silver"
    assert shown["community_tier"]["ctx"] == CTX
    assert "score_opening" not in shown  # neither the CRC's score nor any reputation score
    assert verified["score"] not in json.dumps(shown)
    assert set(shown["community_tier"]) == {"tier", "ctx", "rule_set", "as_of"}


def _holder_key(wallet: dict[str, str]) -> PrivateKey:
    from credit_commons.wallet.store import Wallet  # noqa: PLC0415

    opened = Wallet.open(Path(wallet["COMMONS_WALLET_FILE"]), wallet["COMMONS_WALLET_PASSPHRASE"])
    return opened.holder_key


def _wallet_credentials(wallet: dict[str, str]) -> list[str]:
    # The credentials' texts as the wallet keeps them (opened with the wallet's passphrase).
    from credit_commons.wallet.store import Wallet  # noqa: PLC0415

    opened = Wallet.open(Path(wallet["COMMONS_WALLET_FILE"]), wallet["COMMONS_WALLET_PASSPHRASE"])
    return [c.credential for c in opened.credentials]
