"""End to end with real processes, on SQLite and PostgreSQL: `commons serve`, an issuer
offer, `commons wallet init / accept-offer / list / present`, verification over HTTP,
revocation, and verification failing with credential.revoked."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.commons_inprocess import commons
from tests.e2e.test_serve import commons_env
from tests.factories import readiness_claims
from tests.ports import free_port

COMMONS = [sys.executable, "-m", "credit_commons.cli"]


@pytest.fixture
def platform(tmp_path: Path, backend_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = commons_env(tmp_path / "var", backend_url)
    env["COMMONS_PUBLIC_URL"] = base
    migrated = commons(["db", "upgrade"], env)
    assert migrated.returncode == 0, migrated.stderr
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [*COMMONS, "serve", "--port", str(port), "--no-worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail((tmp_path / "server.log").read_text())
            time.sleep(0.1)
        yield base, env
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        log.close()


def cli(env: dict[str, str], *args: str) -> dict[str, object] | list[object]:
    """``commons … --json`` in ``env``, which must succeed; its JSON answer.  Run in this
    process (tests/commons_inprocess.py: a program start is a second of imports); the
    server is a real process."""
    result = commons([*args, "--json"], env)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, object] | list[object] = json.loads(result.stdout)
    return parsed


def test_offer_wallet_present_verify_revoke(
    platform: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = platform
    admin = cli(env, "admin", "token", "issuer-desk")["token"]  # type: ignore[call-overload]
    as_admin = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=base, timeout=10) as http:
        msme = http.post(
            "/v1/identities", json={"roles": ["business"], "profile": {"name": "Meghna Crafts"}}
        ).json()
        claims = readiness_claims(
            msme["identity_token"],
            745,
            credit_tier="A",
            debt_ratio_bracket="<0.2",
            verification_sources=["gstn", "field_verification"],
        )
        offer = http.post(
            "/v1/credential-offers",
            json={
                "type": "CreditReadinessCredential",
                "subject": msme["identity_token"],
                "claims": claims,
            },
            headers=as_admin,
        ).json()

        wallet_env = {
            **env,
            "COMMONS_WALLET_PASSPHRASE": "correct horse battery staple",
            "COMMONS_WALLET_FILE": str(tmp_path / "wallet.json"),
            # The platform runs on loopback http: in development the wallet allows that
            # with no COMMONS_INSECURE_* setting (issue 14 item 5).
        }
        cli(wallet_env, "wallet", "init", "--type", "p-256")
        assert (tmp_path / "wallet.json").stat().st_mode & 0o777 == 0o600
        received = cli(
            wallet_env,
            "wallet",
            "accept-offer",
            offer["offer_uri_by_reference"],
            "--tx-code",
            offer["tx_code"],
        )
        assert received["configuration"] == "CreditReadinessCredential"  # type: ignore[call-overload]
        listed = cli(wallet_env, "wallet", "list")
        assert [c["id"] for c in listed] == ["c1"]  # type: ignore[index]
        # Replaying the same offer fails: the code is spent.
        replay = subprocess.run(
            [
                *COMMONS,
                "wallet",
                "accept-offer",
                offer["offer_uri_by_reference"],
                "--tx-code",
                offer["tx_code"],
            ],
            env=wallet_env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert replay.returncode != 0
        assert "invalid_grant" in replay.stderr

        nonce, audience = secrets.token_urlsafe(16), "https://lender.example/verify"
        presentation = cli(
            wallet_env,
            "wallet",
            "present",
            "c1",
            "--nonce",
            nonce,
            "--aud",
            audience,
            "--disclose",
            "income_bracket",
        )["presentation"]  # type: ignore[call-overload]
        verified = http.post(
            "/v1/presentations/verify",
            json={"presentation": presentation, "audience": audience, "nonce": nonce},
        )
        assert verified.status_code == 200, verified.text
        assert verified.json()["claims"]["income_bracket"] == "5L-25L"
        assert "score_opening" not in verified.json()["claims"]

        wrong_passphrase = subprocess.run(
            [*COMMONS, "wallet", "list"],
            env={**wallet_env, "COMMONS_WALLET_PASSPHRASE": "wrong"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert "wallet.locked" in wrong_passphrase.stderr

        credential_types = http.get("/v1/credential-types").json()
        names = [t["name"] for t in credential_types]
        assert "CreditReadinessCredential" in names
        assert names == sorted(names)  # the catalogue lists its types by name
        # Revoke the credential that was issued (the only one) and verify again.
        export = http.post(
            f"/v1/identities/{msme['identity_token']}/export",
            headers={"Authorization": f"Bearer {msme['access_token']}"},
        ).json()
        assert any(e["type"] == "credential.issued" for e in export["events"])
        issued = http.get(
            "/v1/credentials", params={"subject": msme["identity_token"]}, headers=as_admin
        ).json()
        assert [c["type"] for c in issued] == ["CreditReadinessCredential"]
        credential_id = issued[0]["credential_id"]
        assert (
            http.post(f"/v1/credentials/{credential_id}/revoke", headers=as_admin).status_code
            == 200
        )
        revoked = http.post(
            "/v1/presentations/verify",
            json={"presentation": presentation, "audience": audience, "nonce": nonce},
        )
        assert revoked.json()["code"] == "credential.revoked"
