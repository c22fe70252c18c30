"""A lender's whole path against a real `commons serve`, on SQLite and PostgreSQL (issue 14):
key, registration approved by an administrator, token, discovery, consent request, the
borrower's approval from the wallet with a DID signature, the decision, a webhook notice,
retrieval, and verification including the access receipt — as the CLI commands of
docs/lenders.md, extracted from the page and run in order, and again through the Python
client, as the page's Python blocks, executed as they are written."""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from tests.commons_inprocess import commons
from tests.e2e.test_wallet_e2e import platform  # noqa: F401 - the fixture
from tests.factories import readiness_claims

from credit_commons.client import LenderKey
from credit_commons.client.lender import registration_request
from credit_commons.consent.models import WebhookDeliveryRow
from credit_commons.core.encoding import b64url_decode
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.did_key import decode_did_key
from credit_commons.keys.jwk import public_key_to_jwk

DOCS = Path(__file__).parents[2] / "docs" / "lenders.md"
WALKTHROUGH = re.compile(
    r"<!-- lender-walkthrough -->\n```console\n(.*?)```\n<!-- /lender-walkthrough -->", re.S
)
# What the documented block must consist of, in order (the test fails if the page drifts).
EXPECTED = [
    "lender key create",
    "lender registration",
    "admin lender approve",
    "export",
    "lender token",
    "lender tiers",
    "lender consent request",
    "wallet consent approve",
    "lender consent wait",
    "lender webhook verify",
    "lender retrieve",
    "lender log-key",
    "export",
    "lender verify",
]


def documented_commands() -> list[list[str]]:
    """The `$ …` lines of the walkthrough block of docs/lenders.md, split like a shell."""
    found = WALKTHROUGH.search(DOCS.read_text())
    assert found, "docs/lenders.md has no walkthrough block"
    return [shlex.split(line[2:]) for line in found.group(1).splitlines() if line.startswith("$ ")]


def run(env: dict[str, str], cwd: Path, args: list[str], code: int = 0) -> Any:
    """Run `commons ARGS --json` in ``cwd``; its JSON output (or, failing, its problem).
    In this process (tests/commons_inprocess.py): the server is the real process."""
    result = commons([*args, "--json"], env, cwd=cwd)
    assert result.returncode == code, (args, result.stdout, result.stderr)
    return json.loads(result.stdout if code == 0 else result.stderr)


@dataclass
class Borrower:
    """A borrower registered with the wallet's DID in their profile, holding a credential
    (tier A), opted in to discovery."""

    env: dict[str, str]
    token: str
    credential_id: str
    admin: dict[str, str] = field(repr=False)


def _borrower(base: str, env: dict[str, str], work: Path) -> Borrower:
    wallet_env = {
        **env,
        "COMMONS_WALLET_PASSPHRASE": "correct horse battery staple",
        "COMMONS_WALLET_FILE": str(work / "wallet.json"),
    }
    did = run(wallet_env, work, ["wallet", "init"])["holder_did"]
    admin = {"Authorization": f"Bearer {run(env, work, ['admin', 'token', 'desk'])['token']}"}
    with httpx.Client(base_url=base, timeout=20) as http:
        made = http.post(
            "/v1/identities",
            json={"roles": ["business"], "profile": {"name": "Meghna Crafts", "did": did}},
        )
        assert made.status_code == 201, made.text
        token = made.json()["identity_token"]
        issued = http.post(
            "/v1/credentials",
            json={
                "type": "CreditReadinessCredential",
                "subject": token,
                "claims": readiness_claims(token, 745, credit_tier="A", income_bracket="25L-1Cr"),
                "holder_jwk": public_key_to_jwk(decode_did_key(did)),
            },
            headers=admin,
        )
        assert issued.status_code == 201, issued.text
        opted = http.put(
            f"/v1/borrowers/{token}/discovery",
            json={"enabled": True},
            headers={"Authorization": f"Bearer {made.json()['access_token']}"},
        )
        assert opted.status_code == 200, opted.text
    return Borrower(wallet_env, token, issued.json()["credential_id"], admin)


def _checkpoint(env: dict[str, str], work: Path) -> None:
    # The operator's worker does this every few seconds; here it runs once, on demand.
    run(env, work, ["log", "checkpoint", "--publish"])


def _notice(database_url: str, client_id: str) -> bytes:
    # What the platform queued for the lender's webhook (delivery needs a public https
    # endpoint): the newest notice, as the endpoint would receive it.
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            bodies = connection.execute(
                select(WebhookDeliveryRow.body)
                .where(WebhookDeliveryRow.lender_client_id == client_id)
                .order_by(WebhookDeliveryRow.created_at)
            ).all()
    finally:
        engine.dispose()
    return bytes(bodies[-1][0])


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "lender"
    path.mkdir()
    return path


def test_the_documented_walkthrough_runs(
    platform: tuple[str, dict[str, str]],  # noqa: F811
    work: Path,
    backend_url: str,
) -> None:
    base, env = platform
    commands = documented_commands()
    assert [_name(c) for c in commands] == EXPECTED
    borrower = _borrower(base, env, work)
    # The lender's machine: none of the platform's settings.
    lender_env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    seen: dict[str, Any] = {}
    for command in commands:
        name = _name(command)
        if name == "export":
            # The test's own values for exactly the variables the page exports.
            for assignment in command[1:]:
                variable = assignment.split("=", 1)[0]
                lender_env[variable] = {
                    "COMMONS_LENDER_URL": base,
                    "COMMONS_LENDER_CLIENT_ID": seen.get("client_id", ""),
                    "COMMONS_LENDER_LOG_KEY": seen.get("vkey", ""),
                }[variable]
            continue
        args = [
            {"BORROWER_REF": seen.get("borrower_ref"), "CONSENT_ID": seen.get("consent_id")}.get(
                a, a
            )
            or a
            for a in command[1:]
        ]
        if name == "lender webhook verify":
            (work / "notice.jwt").write_bytes(_notice(backend_url, seen["client_id"]))
        if name == "lender verify":
            _checkpoint(env, work)
        who = {"admin": env, "wallet": {**borrower.env, "COMMONS_WALLET_URL": base}}
        out = run(who.get(command[1], lender_env), work, args)
        seen.update(_remember(name, out))
        _check(name, out, seen, borrower)
    assert (work / "lender-key.json").stat().st_mode & 0o777 == 0o600
    assert (work / "retrieval.json").stat().st_mode & 0o777 == 0o600
    # The same commands refuse what they must: a second key over the first, a consent
    # still pending, a tampered retrieval, a revoked credential.
    run(lender_env, work, ["lender", "key", "create"], code=5)
    pending = run(
        lender_env,
        work,
        [
            "lender", "consent", "request", "--borrower", seen["borrower_ref"],
            "--purpose", "105", "--claim", "/income_bracket", "--days", "1",
        ],
    )  # fmt: skip
    waited = run(
        lender_env, work, ["lender", "consent", "wait", pending["consent_id"], "--timeout", "0"], 9
    )
    assert waited["code"] == "lender.consent_pending"
    retrieved = json.loads((work / "retrieval.json").read_text())
    jwt, *disclosures, _ = retrieved["credential"].split("~")
    assert json.loads(b64url_decode(jwt.split(".")[1]))["iss"] == base
    dropped = {**retrieved, "credential": "~".join([jwt, *disclosures[1:]]) + "~"}
    (work / "dropped.json").write_text(json.dumps(dropped))
    assert run(lender_env, work, ["lender", "verify", "dropped.json"], 7)["code"] == (
        "lender.retrieval_invalid"
    )
    revoke = httpx.post(
        f"{base}/v1/credentials/{borrower.credential_id}/revoke", headers=borrower.admin
    )
    assert revoke.status_code == 200, revoke.text
    refused = run(lender_env, work, ["lender", "verify", "retrieval.json"], 7)
    assert refused["code"] == "credential.revoked"


def _name(command: list[str]) -> str:
    if command[0] == "export":
        return "export"
    words = [w for w in command[1:] if not w.startswith("-")]
    groups = (["lender", "consent"], ["lender", "webhook"], ["lender", "key"])
    three = words[0] in ("admin", "wallet") or words[:2] in groups
    return " ".join(words[: 3 if three else 2])


def _remember(name: str, out: Any) -> dict[str, Any]:
    if name == "admin lender approve":
        return {"client_id": out["client_id"]}
    if name == "lender tiers":
        return {"borrower_ref": out[0]["borrower_ref"]}
    if name == "lender consent request":
        return {"consent_id": out["consent_id"]}
    if name == "lender log-key":
        return {"vkey": out["vkey"]}
    return {}


def _check(name: str, out: Any, seen: dict[str, Any], borrower: Borrower) -> None:
    if name == "lender key create":
        assert out["public_jwk"]["crv"] == "P-256"
        assert "d" not in out["public_jwk"]
    elif name == "lender token":
        assert out["expires_in"] > 0
        assert set(out["scope"].split()) >= {"consent:request", "credentials:read"}
    elif name == "lender tiers":
        assert [(e["credit_tier"], e["income_bracket"]) for e in out] == [("A", "25L-1Cr")]
    elif name == "lender consent request":
        assert out["status"] == "PENDING"
    elif name == "wallet consent approve":
        assert out["status"] == "ACTIVE"
        assert out["approval"] == "did"
    elif name == "lender consent wait":
        assert out["status"] == "ACTIVE"
        assert out["artefact"]
    elif name == "lender webhook verify":
        assert out == {
            "valid": True,
            "consent_id": seen["consent_id"],
            "status": "ACTIVE",
            "event_id": out["event_id"],
            "issued_at": out["issued_at"],
        }
    elif name == "lender verify":
        assert out["valid"] is True
        assert out["status"] == "valid"
        assert out["claims"]["income_bracket"] == "25L-1Cr"
        assert "score_opening" not in out["claims"]
        assert out["log_size"] > out["leaf_index"]
        assert out["consent_id"] == seen["consent_id"]
    del borrower


PYTHON_BLOCK = re.compile(r"<!-- lender-python -->\n```python\n(.*?)```", re.S)


def test_the_documented_python_path_runs(
    platform: tuple[str, dict[str, str]],  # noqa: F811
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, env = platform
    blocks = PYTHON_BLOCK.findall(DOCS.read_text())
    assert len(blocks) == 3
    borrower = _borrower(base, env, work)
    key = LenderKey.create(work / "lender-key.json", KeyType.ED25519)
    (work / "registration.json").write_text(
        json.dumps(registration_request(key, "Python Bank", ["loan.underwriting"]))
    )
    client_id = run(env, work, ["admin", "lender", "approve", "registration.json"])["client_id"]
    vkey = httpx.get(f"{base}/v1/log/key").json()["vkey"]
    monkeypatch.chdir(work)
    names: dict[str, Any] = {
        "platform_url": base,
        "client_id": client_id,
        "pinned_log_key": vkey,
    }
    exec(compile(blocks[0], "lenders.md", "exec"), names)
    assert names["consent"].status == "PENDING"
    wallet = {**borrower.env, "COMMONS_WALLET_URL": base}
    consent_id = names["consent"].consent_id
    approved = run(wallet, work, ["wallet", "consent", "approve", consent_id])
    assert approved["approval"] == "did"
    exec(compile(blocks[1], "lenders.md", "exec"), names)
    assert names["decided"].status == "ACTIVE"
    assert names["retrieval"].disclosed == ("/income_bracket",)
    _checkpoint(env, work)
    exec(compile(blocks[2], "lenders.md", "exec"), names)
    verified = names["verified"]
    assert verified.status == "valid"
    assert verified.claims["income_bracket"] == "25L-1Cr"
    assert "debt_ratio_bracket" not in verified.claims
    assert verified.access_event_id == names["retrieval"].access_event_id
    assert capsys.readouterr().out.startswith("valid 25L-1Cr ")
