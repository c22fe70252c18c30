"""Issue 19's SHG story up to a capability credential, against a running `commons serve`,
shared by the e2e tests that start from a member holding a CommunityTierCredential
(tests/e2e/test_reputation_shg_story.py, tests/e2e/test_wallet_serve.py).

`member_with_tier` registers the dev rule set (KYC credentials of this platform trusted)
and the dev ZK statements, makes six members (each a wallet registered on the platform,
holding a KycCredential received over OID4VCI, joined), has five vouch for the first within
their budgets, publishes a checkpoint (the in-process worker pass scores it and issues the
queued credential) and has the first pick up her CommunityTierCredential (silver).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from credit_commons import reputation
from tests.e2e.test_wallet_e2e import cli
from tests.factories import kyc_claims

__all__ = ["CTX", "KYC_VCT", "TierHolder", "member", "member_with_tier"]

KYC_VCT = "https://credit-commons.dev/vct/kyc/v1"
CTX = "shg:savings"
PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class TierHolder:
    """The member who reached a tier: her wallet's environment, DID, identity token, the
    local id of her CommunityTierCredential, the tiers received, and an administrator's
    authorization header."""

    wallet: dict[str, str]
    did: str
    person: str
    local_id: str
    tiers: list[str]
    admin: dict[str, str]


def member(
    env: dict[str, str], tmp_path: Path, http: httpx.Client, admin: dict[str, str], name: str
) -> tuple[dict[str, str], str, str]:
    """A member's wallet: created, registered as a person on the platform (her DID in her
    profile), holding a KycCredential received over OID4VCI, joined; (env, DID, identity)."""
    wallet = {
        **env,
        "COMMONS_WALLET_PASSPHRASE": PASSPHRASE,
        "COMMONS_WALLET_FILE": str(tmp_path / f"{name}.json"),
    }
    did = str(cli(wallet, "wallet", "init")["holder_did"])  # type: ignore[call-overload]
    registered: Any = cli(wallet, "wallet", "register", "--url", http.base_url, "--name", name)
    person = str(registered["identity"])
    offer = http.post(
        "/v1/credential-offers",
        json={"type": "KycCredential", "subject": person, "claims": kyc_claims(person)},
        headers=admin,
    )
    assert offer.status_code == 201, offer.text
    body = offer.json()
    cli(
        wallet,
        "wallet",
        "accept-offer",
        body["offer_uri_by_reference"],
        "--tx-code",
        body["tx_code"],
    )
    joined: Any = cli(wallet, "wallet", "join", "c1")
    assert (joined["did"], joined["kyc"]) == (did, True)
    return wallet, did, person


def member_with_tier(
    base: str, env: dict[str, str], tmp_path: Path, http: httpx.Client
) -> TierHolder:
    """The story of the module, up to the first member holding her capability credential."""
    rules = json.loads((Path(reputation.__file__).parent / "dev_rules.json").read_text())
    rules["validFrom"] = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rules["kyc"] = {"credentialTypes": [KYC_VCT], "trustedIssuers": [base]}
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    cli(env, "rules", "register", str(tmp_path / "rules.json"), "--dev")
    cli(env, "zk", "statements", "register", "--dev")  # community_score_at_least among them
    token = cli(env, "admin", "token", "shg-desk")["token"]  # type: ignore[call-overload]
    admin = {"Authorization": f"Bearer {token}"}

    asha, asha_did, asha_person = member(env, tmp_path, http, admin, "Asha")
    others = [member(env, tmp_path, http, admin, f"M{n}") for n in range(5)]
    for wallet, _, _ in others:  # one vouch each: within every budget
        cli(wallet, "wallet", "vouch", asha_did, "--ctx", CTX)

    # A checkpoint lands; the worker's pass scores it and issues the queued credential.
    cli(env, "log", "checkpoint", "--publish")
    received: Any = cli(asha, "wallet", "capabilities", "--ctx", CTX)
    tiers = [r["tier"] for r in received["received"]]
    assert tiers, received
    return TierHolder(asha, asha_did, asha_person, str(received["received"][0]["id"]), tiers, admin)
