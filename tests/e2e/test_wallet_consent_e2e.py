"""The borrower's consent commands as real processes against `commons serve`, on SQLite and
PostgreSQL: `commons wallet register`, `consent list`, `approve` (the DID-signed approval)
and `reject` (a request signed by the holder key)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from tests.e2e.test_wallet_e2e import COMMONS, cli, platform  # noqa: F401 - fixture

from credit_commons.demo import lender_token
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk

PASSPHRASE = "correct horse battery staple"


def wallet_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The borrower's shell: a wallet file and its passphrase."""
    return {
        **env,
        "COMMONS_WALLET_PASSPHRASE": PASSPHRASE,
        "COMMONS_WALLET_FILE": str(tmp_path / "wallet.json"),
    }


def lender(base: str, env: dict[str, str]) -> tuple[httpx.Client, str]:
    """A registered lender's HTTP client (with its access token) and its client id."""
    admin = cli(env, "admin", "token", "lender-desk")["token"]  # type: ignore[call-overload]
    key = PrivateKey.generate(KeyType.ED25519)
    http = httpx.Client(base_url=base, timeout=10)
    made = http.post(
        "/v1/admin/lenders",
        json={
            "name": "Bank One",
            "jwks": {"keys": [public_key_to_jwk(key.public_key)]},
            "allowed_purposes": ["105"],
        },
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert made.status_code == 201, made.text
    client_id = str(made.json()["client_id"])
    http.headers["Authorization"] = f"Bearer {lender_token(http, base, client_id, key)}"
    return http, client_id


def request_consent(http: httpx.Client, borrower: str) -> str:
    """A lender's consent request to ``borrower``; its id."""
    made = http.post(
        "/v1/consents",
        json={
            "template": "loan_underwriting",
            "borrower": borrower,
            "purpose": "105",
            "consent_expiry": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
            "scopes": [{"type": "CreditReadinessCredential", "claims": ["/income_bracket"]}],
        },
    )
    assert made.status_code == 201, made.text
    return str(made.json()["consent_id"])


def test_list_approve_reject_from_the_wallet(
    platform: tuple[str, dict[str, str]],  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    base, env = platform
    wenv = wallet_env(env, tmp_path)
    created: Any = cli(wenv, "wallet", "init")
    registered: Any = cli(wenv, "wallet", "register", "--url", base, "--name", "Asha")
    assert registered["holder_did"] == created["holder_did"]
    borrower = registered["identity"]
    http, client_id = lender(base, env)
    try:
        first, second = request_consent(http, borrower), request_consent(http, borrower)
        # The wallet remembered the platform and the identity.
        listed: Any = cli(wenv, "wallet", "consent", "list")
        assert [(c["consent_id"], c["status"], c["lender"]) for c in listed] == [
            (second, "PENDING", client_id),
            (first, "PENDING", client_id),
        ]
        approved: Any = cli(wenv, "wallet", "consent", "approve", first)
        assert (approved["status"], approved["approval"]) == ("ACTIVE", "did")
        rejected: Any = cli(wenv, "wallet", "consent", "reject", second)
        assert rejected["status"] == "REJECTED"
        assert http.get(f"/v1/consents/{first}").json()["status"] == "ACTIVE"
        active: Any = cli(wenv, "wallet", "consent", "list", "--status", "active")
        assert [c["consent_id"] for c in active] == [first]
        # Approving twice is a conflict (exit 5), with the platform's own code.
        again = subprocess.run(
            [*COMMONS, "wallet", "consent", "approve", first],
            env=wenv,
            capture_output=True,
            text=True,
            check=False,
        )
        assert again.returncode == 5, again.stderr
        assert "consent.state_invalid" in again.stderr
    finally:
        http.close()
