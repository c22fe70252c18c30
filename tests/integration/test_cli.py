"""The ``commons`` CLI on SQLite and PostgreSQL, through its single entry point."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from credit_commons.cli import main
from credit_commons.core.errors import ExitCode
from credit_commons.core.migrate import head_revision
from credit_commons.gateway.surface_pin import SURFACE_REGISTRY_SHA256
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.did_key import encode_did_key


@pytest.fixture
def env(tmp_path: Path, backend_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMONS_DATABASE_URL", backend_url)
    return tmp_path / "var"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_upgrade_create_rotate_list_export(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "db", "upgrade", "--json")
    assert code == 0
    assert json.loads(out)["revision"] == head_revision()
    assert stat.S_IMODE((env / "master.key").stat().st_mode) == 0o600

    code, out, _ = run(capsys, "keys", "create", "issuer-main", "--json")
    assert code == 0
    created = json.loads(out)
    assert (created["name"], created["version"], created["alg"]) == ("issuer-main", 1, "EdDSA")
    code, out, _ = run(capsys, "keys", "create", "issuer-ec", "--type", "p-256", "--json")
    assert json.loads(out)["alg"] == "ES256"
    code, out, _ = run(capsys, "keys", "rotate", "issuer-main", "--json")
    assert json.loads(out)["version"] == 2

    code, out, _ = run(capsys, "keys", "list", "--json")
    listed = [(k["name"], k["version"]) for k in json.loads(out)["keys"]]
    assert listed == [("issuer-ec", 1), ("issuer-main", 1), ("issuer-main", 2)]
    code, out, _ = run(capsys, "keys", "list")
    assert "issuer-main" in out

    code, out, _ = run(capsys, "keys", "export-public", "issuer-main", "--json")
    jwks = json.loads(out)
    assert len(jwks["keys"]) == 2
    assert all("d" not in k for k in jwks["keys"])
    code, out, _ = run(capsys, "did", "resolve", jwks["did"], "--json")
    assert code == 0
    assert json.loads(out)["id"] == jwks["did"]

    code, out, _ = run(capsys, "db", "current", "--json")
    assert json.loads(out)["up_to_date"] is True


def test_errors_map_to_exit_codes(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "db", "upgrade")[0] == 0
    run(capsys, "keys", "create", "dup")
    code, _, err = run(capsys, "keys", "create", "dup")
    assert code == ExitCode.CONFLICT
    assert "key.exists" in err
    code, _, err = run(capsys, "keys", "rotate", "ghost", "--json")
    assert code == ExitCode.NOT_FOUND
    assert json.loads(err)["code"] == "key.not_found"
    code, _, err = run(capsys, "keys", "create", "Bad Name")
    assert code == ExitCode.VALIDATION
    code, _, err = run(capsys, "did", "resolve", "did:key:zNotAKey")
    assert code == ExitCode.VALIDATION
    code, _, _ = run(capsys, "keys", "create")
    assert code == ExitCode.USAGE


def test_production_refusals_exit_with_configuration_code(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMONS_ENV", "production")
    code, _, err = run(capsys, "db", "upgrade")
    assert code == ExitCode.CONFIGURATION
    assert "COMMONS_" in err
    monkeypatch.setenv("COMMONS_ENV", "nonsense")
    code, _, err = run(capsys, "version")
    assert code == ExitCode.CONFIGURATION
    assert "COMMONS_ENV" in err


def test_production_refuses_a_development_master_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path))
    assert run(capsys, "keys", "init-master")[0] == 0  # a development key
    monkeypatch.setenv("COMMONS_ENV", "production")
    monkeypatch.setenv("COMMONS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/x")
    monkeypatch.setenv("COMMONS_PSEUDONYM_PEPPER", "A" * 43)
    monkeypatch.setenv("COMMONS_PUBLIC_URL", "https://commons.example")
    monkeypatch.setenv("COMMONS_SURFACE_REGISTRY_SHA256", SURFACE_REGISTRY_SHA256)
    code, _, err = run(capsys, "db", "upgrade")
    assert code == ExitCode.CONFIGURATION
    assert "init-master --production" in err
    os.remove(tmp_path / "master.key")
    code, _, err = run(capsys, "db", "upgrade")
    assert code == ExitCode.CONFIGURATION
    assert "does not exist" in err
    assert run(capsys, "keys", "init-master", "--production")[0] == 0
    code, _, err = run(capsys, "db", "upgrade")
    # Past every refusal: now it is the (unreachable) database that fails, without
    # showing its URL.
    assert code == ExitCode.UNAVAILABLE
    assert "nobody@" not in err


def test_version_and_did_key_resolution(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "version", "--json")
    assert code == 0
    assert "version" in json.loads(out)
    did = encode_did_key(PrivateKey.generate(KeyType.P256).public_key)
    code, out, _ = run(capsys, "did", "resolve", did)
    assert code == 0
    assert did in out


def test_production_names_every_refusal_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 12 item 17: one error listing each violation (the key file's too), each hint.
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COMMONS_ENV", "production")
    monkeypatch.setenv("COMMONS_PUBLIC_URL", "HTTP://commons.example")
    code, _, err = run(capsys, "db", "upgrade")
    assert code == ExitCode.CONFIGURATION
    for expected in (
        "COMMONS_DATABASE_URL",
        "COMMONS_PSEUDONYM_PEPPER",
        "COMMONS_PUBLIC_URL",
        "COMMONS_SURFACE_REGISTRY_SHA256",
        "master key file",
        "init-master",
    ):
        assert expected in err
    code, _, err = run(capsys, "db", "upgrade", "--json")
    problem = json.loads(err)
    assert problem["code"] == "config.invalid"
    assert len(problem["violations"]) == 5
