"""`commons log …` and `commons anchor status` through the CLI entry point, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from credit_commons.cli import main
from credit_commons.core.errors import ExitCode


@pytest.fixture
def env(tmp_path: Path, backend_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMONS_DATABASE_URL", backend_url)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_log_commands(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "db", "upgrade")[0] == 0
    code, _, err = run(capsys, "log", "checkpoint")
    assert code == ExitCode.NOT_FOUND
    assert "--publish" in err
    for name in ("issuer-a", "issuer-b", "issuer-c"):
        assert run(capsys, "keys", "create", name)[0] == 0
    code, out, _ = run(capsys, "log", "checkpoint", "--publish", "--json")
    assert code == 0
    checkpoint = json.loads(out)
    assert checkpoint["size"] == 3
    vkey = checkpoint["log_key"]
    assert checkpoint["checkpoint"].startswith(checkpoint["origin"] + "\n3\n")

    code, out, _ = run(capsys, "log", "prove-inclusion", "--index", "1", "--json")
    assert json.loads(out)["size"] == 3
    code, out, _ = run(capsys, "log", "prove-consistency", "--from", "1", "--to", "3", "--json")
    assert len(json.loads(out)["proof"]) >= 1
    code, _, _ = run(capsys, "log", "prove-consistency", "--from", "0")
    assert code == ExitCode.USAGE

    code, out, _ = run(capsys, "log", "entries", "--start", "0", "--end", "3", "--json")
    assert code == 0
    event_id = json.loads(out)[1]["entry"]["id"]
    code, out, _ = run(capsys, "log", "receipt", event_id)
    receipt_file = env / "receipt.json"
    receipt_file.write_text(out)
    code, out, _ = run(
        capsys, "log", "verify-receipt", str(receipt_file), "--log-key", vkey, "--json"
    )
    assert code == 0
    assert json.loads(out)["event_checked"] is True

    tampered = json.loads(receipt_file.read_text())
    tampered["index"] = 2
    receipt_file.write_text(json.dumps(tampered))
    code, _, err = run(
        capsys, "log", "verify-receipt", str(receipt_file), "--log-key", vkey, "--json"
    )
    assert code == ExitCode.INTEGRITY
    assert json.loads(err)["code"] == "log.inclusion_invalid"

    code, out, _ = run(capsys, "log", "audit", "--json")
    assert code == 0
    # The audit recomputes the root of the published checkpoint (its third line).
    assert json.loads(out) == {
        "ok": True,
        "size": 3,
        "root": checkpoint["checkpoint"].split("\n")[2],
        "checkpoints": 1,
    }
    code, out, _ = run(capsys, "anchor", "status", "--json")
    assert code == 0
    assert isinstance(json.loads(out)["anchors"], list)
