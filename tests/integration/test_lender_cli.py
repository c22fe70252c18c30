"""`commons lender` refusals without a platform: one line (or one problem+json line), the
documented exit code, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.ports import free_port

from credit_commons.cli import main
from credit_commons.formats.jws import sign_compact
from credit_commons.keys.algorithms import PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk


def _problem(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, str]]:
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, json.loads(captured.err)


def test_settings_and_key_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"http://127.0.0.1:{free_port()}"
    code, problem = _problem(capsys, ["lender", "token", "--url", url])
    assert (code, problem["code"]) == (4, "file.not_found")  # no lender-key.json yet
    assert main(["lender", "key", "create"]) == 0
    capsys.readouterr()
    code, problem = _problem(capsys, ["lender", "token", "--url", url])
    assert (code, problem["code"]) == (8, "lender.not_configured")
    monkeypatch.setenv("COMMONS_LENDER_CLIENT_ID", "lnd_01JABCDEFGHJKMNPQRSTVWXYZ0")
    code, problem = _problem(capsys, ["lender", "token", "--url", url])
    assert (code, problem["code"]) == (9, "lender.platform_unreachable")
    code, problem = _problem(capsys, ["lender", "token", "--url", "http://commons.example"])
    assert (code, problem["code"]) == (8, "lender.url_invalid")
    (tmp_path / "lender-key.json").chmod(0o644)
    code, problem = _problem(capsys, ["lender", "token", "--url", url])
    assert (code, problem["code"]) == (8, "lender.key_unprotected")
    (tmp_path / "retrieval.json").write_text(json.dumps({"consent_id": "cns_x"}))
    code, problem = _problem(capsys, ["lender", "verify", "retrieval.json", "--url", url])
    assert (code, problem["code"]) == (3, "request.invalid")


def test_webhook_verify_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    platform = "https://commons.example"
    client_id = "lnd_01JABCDEFGHJKMNPQRSTVWXYZ0"
    monkeypatch.setenv("COMMONS_LENDER_URL", platform)
    monkeypatch.setenv("COMMONS_LENDER_CLIENT_ID", client_id)
    key = PrivateKey.generate()
    (tmp_path / "jwks.json").write_text(
        json.dumps({"keys": [public_key_to_jwk(key.public_key, kid="c1")]})
    )
    payload = {
        "iss": platform,
        "aud": client_id,
        "iat": 1,
        "consent_id": "cns_1",
        "status": "REVOKED",
        "event_id": "evt_1",
    }
    header = {"typ": "consent-event+jwt", "kid": "c1"}
    (tmp_path / "good.jwt").write_text(sign_compact(header, payload, key))
    assert main(["lender", "webhook", "verify", "good.jwt", "--jwks", "jwks.json", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "REVOKED"
    (tmp_path / "bad.jwt").write_text(sign_compact(header, payload, PrivateKey.generate()))
    code, problem = _problem(
        capsys, ["lender", "webhook", "verify", "bad.jwt", "--jwks", "jwks.json"]
    )
    assert (code, problem["code"]) == (7, "lender.webhook_invalid")
