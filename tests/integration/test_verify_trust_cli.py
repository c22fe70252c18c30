"""``commons verify trust …`` and ``commons verify policy …`` on SQLite and PostgreSQL,
through the CLI's single entry point."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from tests.unit.verifier.x509_support import chain

from credit_commons.cli import main
from credit_commons.core.errors import ExitCode
from credit_commons.keys import decode_did_key
from credit_commons.verifier.trust_bundle import verify_bundle

VCT = "https://coop.example/vct/membership/v1"


@pytest.fixture
def env(tmp_path: Path, backend_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMONS_DATABASE_URL", backend_url)
    assert main(["db", "upgrade"]) == 0
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_trust_commands(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code, out, _ = run(
        capsys, "verify", "trust", "add", "did:web:coop.example",
        "--mark", "shg-federation", "--type", VCT, "--json",
    )  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["marks"] == ["shg-federation"]
    root, _, _ = chain()
    anchor = env / "root.pem"
    anchor.write_bytes(root.certificate.public_bytes(Encoding.PEM))
    code, out, _ = run(capsys, "verify", "trust", "add", "--anchor", str(anchor), "--mark", "bank")
    assert code == 0
    assert "x509" in out
    code, _, err = run(capsys, "verify", "trust", "add", "did:web:x.example", "--mark", "Not OK")
    assert code == ExitCode.VALIDATION, err
    code, _, err = run(capsys, "verify", "trust", "add")
    assert code == ExitCode.USAGE, err

    code, out, _ = run(capsys, "verify", "trust", "key", "--json")
    key = decode_did_key(json.loads(out)["did"])
    code, out, _ = run(capsys, "verify", "trust", "bundle")
    assert code == 0
    bundle = verify_bundle(out.strip(), key, now=datetime.now(UTC))
    assert bundle.version == 2
    code, out, _ = run(capsys, "verify", "trust", "show")
    assert "version 2" in out
    assert "did:web:coop.example" in out

    code, out, _ = run(capsys, "verify", "trust", "remove", "did:web:coop.example", "--json")
    assert code == 0
    code, out, _ = run(capsys, "verify", "trust", "show", "--json")
    assert json.loads(out)["version"] == 3
    code, out, _ = run(capsys, "verify", "trust", "pins", "--json")
    assert json.loads(out) == []


def test_policy_commands(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    document = {
        "id": "income",
        "version": 1,
        "rule": {"rule": "predicate", "path": ["income"], "op": "gte", "value": 1000},
    }
    first = env / "v1.json"
    first.write_text(json.dumps(document))
    second = env / "v2.json"
    second.write_text(json.dumps({**document, "version": 2}))
    code, out, _ = run(
        capsys, "verify", "policy", "create", str(first), "--profile", "india-dpdp", "--json"
    )
    assert code == 0, out
    assert json.loads(out)["profile"] == "india-dpdp"
    code, out, _ = run(capsys, "verify", "policy", "version", "income", str(second))
    assert code == 0
    assert "version 2" in out
    code, out, _ = run(capsys, "verify", "policy", "floor", "income", "2", "--json")
    assert json.loads(out)["floor"] == 2
    code, _, err = run(capsys, "verify", "policy", "floor", "income", "1")
    assert code == ExitCode.CONFLICT, err
    code, out, _ = run(capsys, "verify", "policy", "show", "income", "--version", "1", "--json")
    assert (json.loads(out)["version"], json.loads(out)["floor"]) == (1, 2)
    code, out, _ = run(capsys, "verify", "policy", "list")
    assert "platform/income version 2" in out
    bad = env / "bad.json"
    bad.write_text(json.dumps({**document, "id": "x", "rule": {"rule": "any_of", "rules": []}}))
    code, _, err = run(capsys, "verify", "policy", "create", str(bad))
    assert code == ExitCode.VALIDATION
    assert "verifier.policy_invalid" in err
    code, _, err = run(capsys, "verify", "policy", "show", "nope")
    assert code == ExitCode.NOT_FOUND
