"""A borrower's whole life with the wallet, its commands against a real `commons serve`, on
SQLite and PostgreSQL: register, receive a credential, decide consents (approve, pause,
resume, revoke, revoke-all), the access history with every receipt verified locally, key
rotation (a credential bound to the old key still presents), export, erasure — and the
proofs of withdrawal and erasure, kept by the wallet, completed once a checkpoint covers
them (after the erasure too) and verified offline by `commons log verify-receipt`."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx
from tests.commons_inprocess import commons
from tests.e2e.test_wallet_consent_e2e import lender, request_consent, wallet_env
from tests.e2e.test_wallet_e2e import cli, platform  # noqa: F401 - fixture
from tests.factories import readiness_claims


def offline(*args: str) -> dict[str, Any]:
    """A command run with no COMMONS_* settings at all: nothing but the arguments (an
    empty environment)."""
    result = commons([*args, "--json"], {})
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def present_and_verify(wenv: dict[str, str], http: httpx.Client) -> None:
    nonce, audience = secrets.token_urlsafe(16), "https://lender.example/verify"
    shown: Any = cli(
        wenv, "wallet", "present", "c1", "--nonce", nonce, "--aud", audience,
        "--disclose", "income_bracket",
    )  # fmt: skip
    verified = http.post(
        "/v1/presentations/verify",
        json={"presentation": shown["presentation"], "audience": audience, "nonce": nonce},
    )
    assert verified.status_code == 200, verified.text


def test_a_borrowers_life_with_the_wallet(
    platform: tuple[str, dict[str, str]],  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    base, env = platform
    wenv = wallet_env(env, tmp_path)
    cli(wenv, "wallet", "init")
    borrower = cli(wenv, "wallet", "register", "--url", base, "--name", "Asha")["identity"]  # type: ignore[call-overload]
    admin = cli(env, "admin", "token", "issuer-desk")["token"]  # type: ignore[call-overload]
    anonymous = httpx.Client(base_url=base, timeout=10)
    http, client_id = lender(base, env)
    try:
        offer = anonymous.post(
            "/v1/credential-offers",
            json={
                "type": "CreditReadinessCredential",
                "subject": borrower,
                "claims": readiness_claims(borrower, 720),
            },
            headers={"Authorization": f"Bearer {admin}"},
        ).json()
        cli(wenv, "wallet", "accept-offer", offer["offer_uri_by_reference"],
            "--tx-code", offer["tx_code"])  # fmt: skip

        kept, shared, refused = (request_consent(http, borrower) for _ in range(3))
        for consent_id in (kept, shared):
            cli(wenv, "wallet", "consent", "approve", consent_id)
        cli(wenv, "wallet", "consent", "reject", refused)
        paused: Any = cli(wenv, "wallet", "consent", "pause", kept)
        assert paused["status"] == "PAUSED"
        resumed: Any = cli(wenv, "wallet", "consent", "resume", kept)
        assert resumed["status"] == "ACTIVE"
        # The lender uses one consent: an access in the borrower's history.
        got = http.get("/v1/lender/credentials", params={"consent_id": shared})
        assert got.status_code == 200, got.text

        revoked: Any = cli(wenv, "wallet", "consent", "revoke", kept)
        assert revoked["status"] == "REVOKED"
        listed: Any = cli(wenv, "wallet", "receipts", "list")
        assert [(r["event_id"], r["type"], r["included"]) for r in listed] == [
            (revoked["event_id"], "consent.revoked", False)
        ]
        # The proof of withdrawal verifies at once, offline: the log's signed entry.
        vkey = anonymous.get("/v1/log/key").json()["vkey"]
        proof = tmp_path / "revocation.json"
        cli(wenv, "wallet", "receipts", "show", revoked["event_id"], "--out", str(proof))
        pending = offline("log", "verify-receipt", str(proof), "--log-key", vkey)
        assert (pending["valid"], pending["included"]) == (True, False)

        all_revoked: Any = cli(wenv, "wallet", "consent", "revoke-all", "--lender", client_id)
        assert all_revoked["revoked"] == [shared]
        cli(env, "log", "checkpoint", "--publish")
        refreshed: Any = cli(wenv, "wallet", "receipts", "refresh")
        assert {r["event_id"] for r in refreshed} == {
            revoked["event_id"],
            all_revoked["receipts"][shared]["event"]["id"],
        }
        assert all(r["included"] for r in refreshed)
        cli(wenv, "wallet", "receipts", "show", revoked["event_id"], "--out", str(proof))
        included = offline("log", "verify-receipt", str(proof), "--log-key", vkey)
        assert (included["included"], included["entry_signed"]) == (True, True)

        history: Any = cli(wenv, "wallet", "history")
        assert [(e["outcome"], e["verified"]) for e in history] == [("allowed", "included")]
        assert history[0]["lender"] == client_id

        # Key rotation: the platform takes the new DID; the old credential still presents.
        present_and_verify(wenv, anonymous)
        rotated: Any = cli(wenv, "wallet", "rotate-key")
        assert rotated["previous_keys"] == 1
        assert [c["consent_id"] for c in cli(wenv, "wallet", "consent", "list")] == [  # type: ignore[index]
            refused,
            shared,
            kept,
        ]
        present_and_verify(wenv, anonymous)

        exported = tmp_path / "export.json"
        cli(wenv, "wallet", "privacy", "export", "--out", str(exported))
        document = json.loads(exported.read_text())
        assert document["profile"]["did"] == rotated["did"]
        assert exported.stat().st_mode & 0o777 == 0o600

        refusal = commons(["wallet", "privacy", "erase"], wenv)
        assert refusal.returncode == 3, refusal.stderr
        # Named explicitly, the identity is still forgotten once erased.
        erased: Any = cli(wenv, "wallet", "privacy", "erase", "--yes", "--identity", borrower)
        assert erased["erased"] is True
        # The subject is gone; the proof of erasure completes from the public log.
        cli(env, "log", "checkpoint", "--publish")
        done: Any = cli(wenv, "wallet", "receipts", "refresh", erased["event_id"])
        assert done == [{"event_id": erased["event_id"], "included": True}]
        cli(wenv, "wallet", "receipts", "show", erased["event_id"], "--out", str(proof))
        verified = offline("log", "verify-receipt", str(proof), "--log-key", vkey)
        assert (verified["event_type"], verified["included"]) == ("subject.erased", True)
        gone = commons(["wallet", "consent", "list"], wenv)
        assert gone.returncode == 3, gone.stderr  # the wallet forgot the identity
    finally:
        http.close()
        anonymous.close()
