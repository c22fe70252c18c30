"""The log's identity is fixed when the log is created (issue 12 item 12), on both databases.

An instance restarted with another ``COMMONS_PUBLIC_URL`` keeps its origin and key, so every
checkpoint signed before the change still passes ``commons log audit``; a
``COMMONS_LOG_ORIGIN`` that disagrees with the recorded origin is refused at start-up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.conftest import make_settings, migrate

from credit_commons.cli import main
from credit_commons.core.db import transaction
from credit_commons.core.errors import ExitCode
from credit_commons.core.facts import PlatformFactRow
from credit_commons.gateway.app import create_app
from credit_commons.keys import service as keys_service
from credit_commons.keys.algorithms import KeyType
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime

FIRST = "http://127.0.0.1:8201"
LATER = "https://commons.example"


@pytest.fixture
def env(tmp_path: Path, backend_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMONS_DATABASE_URL", backend_url)
    monkeypatch.setenv("COMMONS_PUBLIC_URL", FIRST)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def checkpoint(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    code, out, err = run(capsys, "log", "checkpoint", "--publish", "--json")
    assert code == 0, err
    result: dict[str, object] = json.loads(out)
    return result


def test_a_new_public_url_keeps_the_origin_and_every_checkpoint_verifies(
    env: Path,
    backend_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(capsys, "db", "upgrade")[0] == 0
    assert run(capsys, "keys", "create", "issuer-a")[0] == 0
    first = checkpoint(capsys)
    assert first["origin"] == "127.0.0.1:8201/log"

    # The instance is moved behind its public name.
    monkeypatch.setenv("COMMONS_PUBLIC_URL", LATER)
    assert run(capsys, "keys", "create", "issuer-b")[0] == 0
    second = checkpoint(capsys)
    assert second["origin"] == first["origin"]
    assert second["log_key"] == first["log_key"]
    assert second["size"] > first["size"]  # type: ignore[operator]
    assert str(second["checkpoint"]).startswith("127.0.0.1:8201/log\n")

    code, out, err = run(capsys, "log", "audit", "--json")
    assert code == 0, err
    assert json.loads(out) == {**json.loads(out), "ok": True, "checkpoints": 2}
    # The pinned key an auditor kept from the first day verifies the whole log too.
    code, _, err = run(capsys, "log", "audit", "--log-key", str(first["log_key"]))
    assert code == 0, err

    # The worker, the log API and anchoring use the recorded origin as well.
    assert run(capsys, "keys", "create", "issuer-c")[0] == 0
    code, out, err = run(capsys, "worker", "--once", "--json")
    assert code == 0, err
    with TestClient(
        create_app(make_settings(env, database_url=backend_url, public_url=LATER))
    ) as client:
        assert client.get("/v1/log/key").json() == {
            "origin": first["origin"],
            "vkey": first["log_key"],
        }
        note = client.get("/v1/log/checkpoint").text
        assert note.startswith("127.0.0.1:8201/log\n")
    code, out, _ = run(capsys, "anchor", "status", "--json")
    assert code == 0
    assert json.loads(out)["anchors"], "the file anchor ran with the worker"
    journal = (env / "var" / "anchors.jsonl").read_text().splitlines()
    assert {json.loads(line)["origin"] for line in journal} == {first["origin"]}
    code, _, err = run(capsys, "log", "audit")
    assert code == 0, err


def test_a_disagreeing_log_origin_is_refused_naming_both(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "db", "upgrade")[0] == 0
    assert run(capsys, "keys", "create", "issuer-a")[0] == 0
    assert checkpoint(capsys)["origin"] == "127.0.0.1:8201/log"

    monkeypatch.setenv("COMMONS_LOG_ORIGIN", "commons.example/log")
    for command in (["worker", "--once"], ["log", "checkpoint"], ["serve", "--port", "1"]):
        code, out, err = run(capsys, *command)
        assert code == ExitCode.CONFIGURATION, (command, out, err)
        assert "log.identity_mismatch" in err
        assert "commons.example/log" in err
        assert "127.0.0.1:8201/log" in err
        assert "Traceback" not in err
    code, _, err = run(capsys, "worker", "--once", "--json")
    problem = json.loads(err)
    assert (problem["code"], problem["status"]) == ("log.identity_mismatch", 500)

    # The recorded origin, given explicitly, is accepted.
    monkeypatch.setenv("COMMONS_LOG_ORIGIN", "127.0.0.1:8201/log")
    assert run(capsys, "worker", "--once")[0] == 0


def test_an_explicit_log_origin_names_a_new_log(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMONS_LOG_ORIGIN", "log.commons.example/2026")
    assert run(capsys, "db", "upgrade")[0] == 0
    assert run(capsys, "keys", "create", "issuer-a")[0] == 0
    assert checkpoint(capsys)["origin"] == "log.commons.example/2026"
    monkeypatch.delenv("COMMONS_LOG_ORIGIN")
    monkeypatch.setenv("COMMONS_PUBLIC_URL", LATER)
    assert checkpoint(capsys)["origin"] == "log.commons.example/2026"


def test_a_rotated_log_key_is_refused_rather_than_starting_another_log(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "db", "upgrade")[0] == 0
    assert run(capsys, "keys", "create", "issuer-a")[0] == 0
    checkpoint(capsys)
    assert run(capsys, "keys", "rotate", "log")[0] == 0
    assert run(capsys, "keys", "create", "issuer-b")[0] == 0
    code, _, err = run(capsys, "log", "checkpoint", "--publish")
    assert code == ExitCode.CONFIGURATION
    assert "recorded key" in err


def test_a_log_created_before_its_identity_was_recorded_keeps_its_origin(
    tmp_path: Path, backend_url: str
) -> None:
    settings = make_settings(tmp_path, database_url=backend_url, public_url=FIRST)
    rt = Runtime.build(settings)
    migrate(rt.engine)
    try:
        with transaction(rt.sessions) as session:
            keys_service.create_key(
                session,
                rt.key_store,
                rt.clock,
                name="issuer-a",
                key_type=KeyType.ED25519,
                actor=rt.operator_actor(),
                objects=rt.objects,
            )
        assert LogWorker(rt, steps=[]).run_once(force_checkpoint=True).checkpoint == 1
        with transaction(rt.sessions) as session:
            # As an instance upgraded from before the identity was recorded.
            session.query(PlatformFactRow).filter(PlatformFactRow.key.like("log.%")).delete()
    finally:
        rt.close()
    later = Runtime.build(make_settings(tmp_path, database_url=backend_url, public_url=LATER))
    try:
        assert log_identity(later).origin == "127.0.0.1:8201/log"
    finally:
        later.close()
