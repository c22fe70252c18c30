"""``commons verify request|status|decision`` (cli/verify_oid4vp.py) against the platform's
HTTP API (the lender client over the test app's transport), on SQLite and PostgreSQL: a
request made from the command line, answered by a wallet, its status and its decision."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from tests.integration.test_lender_client import InProcess
from tests.integration.verifier_world import BASE, VpWorld, crc_query, vp

from credit_commons.cli import lender as lender_cli
from credit_commons.cli import main
from credit_commons.client import Lender, LenderKey

__all__ = ["vp"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> dict[str, object]:
    assert main([*argv, "--json"]) == code
    captured = capsys.readouterr()
    return dict(json.loads(captured.out if code == 0 else captured.err))


def test_request_status_and_decision_from_the_command_line(
    vp: VpWorld,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = LenderKey.create(tmp_path / "lender-key.json")
    made = vp.http.post(
        "/v1/admin/lenders",
        json={
            "name": "CLI Bank",
            "jwks": {"keys": [key.public_jwk()]},
            "allowed_purposes": ["loan.underwriting"],
        },
        headers=vp.admin,
    )
    assert made.status_code == 201, made.text
    client_id = made.json()["client_id"]
    # The client reaches the test app through its transport (no server, no network).
    # (verify builds the client as `commons lender` does: cli/lender.py's lender_client).
    monkeypatch.setattr(
        lender_cli, "Lender", functools.partial(Lender, transport=InProcess(vp.http))
    )
    monkeypatch.setenv("COMMONS_LENDER_URL", BASE)
    monkeypatch.setenv("COMMONS_LENDER_CLIENT_ID", client_id)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "query.json").write_text(json.dumps(crc_query()))
    created = _run(
        capsys,
        "verify",
        "request",
        "--dcql",
        "query.json",
        "--mode",
        "direct_post.jwt",
        "--redirect-uri",
        "https://bank.example/done",
    )
    transaction_id = str(created["id"])
    assert str(created["wallet_url"]).startswith("openid4vp://?client_id=decentralized_identifier")
    assert _run(capsys, "verify", "status", transaction_id)["state"] == "pending"

    holder = vp.holder()
    request = vp.wallet_request(created)
    answered = vp.respond(created, request, {"crc": [vp.presentation(holder, request)]})
    assert answered.status_code == 200, answered.text
    code = parse_qs(urlsplit(answered.json()["redirect_uri"]).query)["response_code"][0]

    status = _run(capsys, "verify", "status", transaction_id)
    assert (status["state"], status["decision"]) == ("decided", "allow")
    decision = _run(capsys, "verify", "decision", transaction_id, "--code", code)
    credentials = decision["credentials"]
    assert isinstance(credentials, list)
    assert credentials[0]["claims"]["income_bracket"] == "5L-25L"
    again = _run(capsys, "verify", "decision", transaction_id, "--code", code, code=4)
    assert again["code"] == "resource.not_found"


def test_a_refused_decision_prints_the_apis_field_errors(
    vp: VpWorld,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `--code none` was "request.invalid: the request is not valid" alone: the API's field
    # error (response_code: at least 16 characters) was dropped from the line.
    key = LenderKey.create(tmp_path / "lender-key.json")
    made = vp.http.post(
        "/v1/admin/lenders",
        json={
            "name": "CLI Bank",
            "jwks": {"keys": [key.public_jwk()]},
            "allowed_purposes": ["loan.underwriting"],
        },
        headers=vp.admin,
    )
    assert made.status_code == 201, made.text
    monkeypatch.setattr(
        lender_cli, "Lender", functools.partial(Lender, transport=InProcess(vp.http))
    )
    monkeypatch.setenv("COMMONS_LENDER_URL", BASE)
    monkeypatch.setenv("COMMONS_LENDER_CLIENT_ID", made.json()["client_id"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "query.json").write_text(json.dumps(crc_query()))
    created = _run(capsys, "verify", "request", "--dcql", "query.json")
    assert main(["verify", "decision", str(created["id"]), "--code", "none"]) == 3
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: request.invalid: the request is not valid (response_code: ")
    assert "at least 16 characters" in line
    assert len(line.splitlines()) == 1
    refused = _run(capsys, "verify", "decision", str(created["id"]), "--code", "none", code=3)
    assert refused["errors"] == [
        {"field": "response_code", "message": "String should have at least 16 characters"}
    ]
