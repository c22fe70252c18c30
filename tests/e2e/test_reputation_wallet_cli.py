"""`commons wallet join / vouch / report / leave` against a real `commons serve` on SQLite
and PostgreSQL: a member joins with a KYC credential received over OID4VCI, vouches and
reports; each receipt is kept in the wallet and the blob served by its CID is the signed
event.  Then the member leaves scoring (a tombstone signed by the holder key): a second
leave answers the same exclusion, and its next vouch is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from tests.commons_inprocess import commons
from tests.e2e.test_wallet_e2e import cli, platform  # noqa: F401 - the fixture
from tests.factories import kyc_claims

from credit_commons import reputation
from credit_commons.reputation import blob_cid, parse_event

KYC_VCT = "https://credit-commons.dev/vct/kyc/v1"  # the catalogue's KycCredential


def _wallet(env: dict[str, str], tmp_path: Path, name: str) -> dict[str, str]:
    wallet_env = {
        **env,
        "COMMONS_WALLET_PASSPHRASE": "correct horse battery staple",
        "COMMONS_WALLET_FILE": str(tmp_path / f"{name}.json"),
    }
    cli(wallet_env, "wallet", "init")
    return wallet_env


def test_join_vouch_report_with_the_wallet(
    platform: tuple[str, dict[str, str]],  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    base, env = platform
    rules = json.loads((Path(reputation.__file__).parent / "dev_rules.json").read_text())
    rules["validFrom"] = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rules["kyc"] = {"credentialTypes": [KYC_VCT], "trustedIssuers": [base]}
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    cli(env, "rules", "register", str(tmp_path / "rules.json"), "--dev")
    admin = cli(env, "admin", "token", "reputation")["token"]  # type: ignore[call-overload]
    as_admin = {"Authorization": f"Bearer {admin}"}
    alice, bob = _wallet(env, tmp_path, "alice"), _wallet(env, tmp_path, "bob")
    bob_did = cli(bob, "wallet", "register", "--name", "Bob", "--url", base)["holder_did"]  # type: ignore[call-overload]

    with httpx.Client(base_url=base, timeout=10) as http:
        person = http.post("/v1/identities", json={"profile": {"name": "Alice"}}).json()
        offer = http.post(
            "/v1/credential-offers",
            json={
                "type": "KycCredential",
                "subject": person["identity_token"],
                "claims": kyc_claims(person["identity_token"]),
            },
            headers=as_admin,
        ).json()
        cli(
            alice,
            "wallet",
            "accept-offer",
            offer["offer_uri_by_reference"],
            "--tx-code",
            offer["tx_code"],
        )

        joined = cli(alice, "wallet", "join", "c1", "--url", base)
        assert joined["kyc"] is True  # type: ignore[call-overload]
        vouched = cli(alice, "wallet", "vouch", str(bob_did), "--ctx", "shg:savings")
        reported = cli(alice, "wallet", "report", str(bob_did), "--ctx", "general", "--detached")
        for answer in (vouched, reported):
            cid = answer["cid"]  # type: ignore[call-overload]
            blob = http.get(f"/v1/blobs/{cid}")
            assert blob.status_code == 200
            assert blob_cid(blob.content) == cid
            event = parse_event(blob.content)
            event.verify()
            assert event.sender == joined["did"]  # type: ignore[call-overload]
            assert event.to == bob_did
        assert parse_event(http.get(f"/v1/blobs/{reported['cid']}").content).detached  # type: ignore[call-overload]

    kept = cli(alice, "wallet", "receipts", "list")
    types = sorted(r["type"] for r in kept)  # type: ignore[union-attr, index]
    assert types == ["reputation.event", "reputation.event"]

    refused = commons(["wallet", "leave", "--json"], alice)  # no --yes: nothing sent
    assert refused.returncode != 0
    left = cli(alice, "wallet", "leave", "--yes")
    assert left["did"] == joined["did"]  # type: ignore[call-overload]
    assert left["reason"] == "tombstone"  # type: ignore[call-overload]
    again = cli(alice, "wallet", "leave", "--yes")
    assert again["event_id"] == left["event_id"]  # type: ignore[call-overload]
    after = commons(["wallet", "vouch", str(bob_did), "--ctx", "shg:savings", "--json"], alice)
    assert after.returncode != 0
    assert "reputation.sender_locked" in after.stderr
