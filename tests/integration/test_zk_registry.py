"""The ZK statement registry on both databases: registration signs the statement and records
its event; loading verifies the signature and re-hashes every artefact; a ``dev`` setup is
refused in production; versions only go up; the CLI and ``GET /v1/zk/statements`` read it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from credit_commons.cli import main
from credit_commons.core import Environment
from credit_commons.core.db import transaction
from credit_commons.core.errors import ConflictError
from credit_commons.events import EventRow
from credit_commons.runtime import Runtime
from credit_commons.zk import registry
from credit_commons.zk.registry_models import ZkStatementRow
from credit_commons.zk.statement import (
    ArtefactMismatch,
    SetupNotAllowed,
    StatementInvalid,
    StatementNotFound,
    StatementSignatureInvalid,
)

VCT = "https://credit-commons.dev/vct/credit-readiness/v1"


def _artefacts(directory: Path, name: str) -> dict[str, dict[str, str]]:
    directory.mkdir(parents=True, exist_ok=True)
    found = {}
    for role, suffix in (("wasm", ".wasm"), ("zkey", ".zkey"), ("vkey", ".vkey.json")):
        data = json.dumps({"role": role, "of": name}).encode()
        (directory / f"{name}{suffix}").write_bytes(data)
        found[role] = {"file": f"{name}{suffix}", "sha256": hashlib.sha256(data).hexdigest()}
    return found


def statement(directory: Path, *, version: int = 1, provenance: str = "dev") -> dict[str, Any]:
    """A score_at_least statement whose artefacts are files written in ``directory``."""
    return {
        "id": "score_at_least",
        "version": version,
        "title": "score >= threshold",
        "proof_system": "groth16",
        "curve": "bls12-381",
        "artefacts": _artefacts(directory, "score_at_least"),
        "public_inputs": [
            {"name": "commitment", "source": "commitment"},
            {"name": "threshold", "source": "param", "param": "threshold"},
            {"name": "binding", "source": "binding"},
        ],
        "required_bindings": ["nonce", "audience", "request_hash"],
        "params": {"threshold": {"min": 300, "max": 900}},
        "credential": {
            "vct": VCT,
            "claim": "/score_opening/score",
            "encoding": "integer",
            "commitment": "score",
        },
        "setup_provenance": provenance,
    }


def _register(rt: Runtime, directory: Path, **kwargs: Any) -> None:
    with transaction(rt.sessions) as session:
        registry.register_statement(
            session,
            rt,
            statement(directory, **kwargs),
            actor=rt.operator_actor("zk"),
            artefacts=directory,
        )


def test_register_signs_records_and_loads(runtime: Runtime, tmp_path: Path) -> None:
    directory = tmp_path / "artefacts"
    _register(runtime, directory)
    with transaction(runtime.sessions) as session:
        loaded = registry.load_statement(session, runtime, "score_at_least", artefacts=directory)
        views = registry.list_statements(session, runtime)
        events = list(session.scalars(select(EventRow).where(EventRow.type.like("zk.%"))))
        found = registry.statements_for_vct(session, runtime, VCT)
        other = registry.statements_for_vct(session, runtime, "https://x.example/vct")
    assert loaded.statement.id == "score_at_least"
    assert loaded.verification_key == {"role": "vkey", "of": "score_at_least"}
    assert [v.id for v in views] == ["score_at_least"]
    assert views[0].token.count(".") == 2
    assert views[0].statement["setup_provenance"] == "dev"
    assert [e.type for e in events] == ["zk.statement_registered"]
    details = (
        json.loads(events[0].details) if isinstance(events[0].details, str) else events[0].details
    )
    assert details["statement"] == "score_at_least"
    assert details["document_sha256"] == views[0].document_sha256
    assert [s.id for s in found] == ["score_at_least"]
    assert other == []


def test_versions_only_go_up(runtime: Runtime, tmp_path: Path) -> None:
    directory = tmp_path / "artefacts"
    _register(runtime, directory)
    with pytest.raises(ConflictError):
        _register(runtime, directory)  # the same version again
    _register(runtime, directory, version=2)
    with pytest.raises(ConflictError):
        _register(runtime, directory, version=1)
    with transaction(runtime.sessions) as session:
        (view,) = registry.list_statements(session, runtime)
        events = session.scalars(select(EventRow.type).where(EventRow.type.like("zk.%"))).all()
    assert view.version == 2
    assert len(events) == 2


def test_artefact_mismatch_is_refused_at_registration_and_load(
    runtime: Runtime, tmp_path: Path
) -> None:
    directory = tmp_path / "artefacts"
    document = statement(directory)
    document["artefacts"]["zkey"]["sha256"] = "0" * 64
    with transaction(runtime.sessions) as session, pytest.raises(ArtefactMismatch):
        registry.register_statement(
            session, runtime, document, actor="p1:" + "a" * 43, artefacts=directory
        )
    _register(runtime, directory)
    # A key replaced after registration: loading refuses it (the vkey, then the zkey).
    (directory / "score_at_least.vkey.json").write_bytes(b'{"role": "vkey", "of": "another"}')
    with transaction(runtime.sessions) as session, pytest.raises(ArtefactMismatch):
        registry.load_statement(session, runtime, "score_at_least", artefacts=directory)
    (directory / "score_at_least.vkey.json").unlink()
    with transaction(runtime.sessions) as session, pytest.raises(ArtefactMismatch):
        registry.load_statement(session, runtime, "score_at_least", artefacts=directory)


def test_a_tampered_stored_statement_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    directory = tmp_path / "artefacts"
    _register(runtime, directory)
    with transaction(runtime.sessions) as session:
        row = session.get(ZkStatementRow, "score_at_least")
        assert row is not None
        header, payload, signature = row.token.split(".")
        row.token = f"{header}.{payload}.{signature[:-4]}AAAA"
    with transaction(runtime.sessions) as session, pytest.raises(StatementSignatureInvalid):
        registry.load_statement(session, runtime, "score_at_least", artefacts=directory)
    with transaction(runtime.sessions) as session:
        row = session.get(ZkStatementRow, "score_at_least")
        assert row is not None
        row.token = f"{header}.{payload}.{signature}"
        row.version = 7  # the row no longer says what was signed
    with transaction(runtime.sessions) as session, pytest.raises(StatementSignatureInvalid):
        registry.load_statement(session, runtime, "score_at_least", artefacts=directory)


def test_unknown_and_invalid_statements(runtime: Runtime, tmp_path: Path) -> None:
    directory = tmp_path / "artefacts"
    with transaction(runtime.sessions) as session, pytest.raises(StatementNotFound):
        registry.load_statement(session, runtime, "score_at_least", artefacts=directory)
    broken = statement(directory)
    broken["public_inputs"] = broken["public_inputs"][:2]  # no binding input
    with transaction(runtime.sessions) as session, pytest.raises(StatementInvalid):
        registry.register_statement(
            session, runtime, broken, actor="p1:" + "a" * 43, artefacts=directory
        )
    broken = statement(directory)
    broken["required_bindings"] = ["nonce"]
    with transaction(runtime.sessions) as session, pytest.raises(StatementInvalid):
        registry.register_statement(
            session, runtime, broken, actor="p1:" + "a" * 43, artefacts=directory
        )
    broken = statement(directory)
    broken["artefacts"]["vkey"]["file"] = "../../etc/passwd"
    with transaction(runtime.sessions) as session, pytest.raises(StatementInvalid):
        registry.register_statement(
            session, runtime, broken, actor="p1:" + "a" * 43, artefacts=directory
        )


def test_production_refuses_a_dev_setup(runtime: Runtime, tmp_path: Path) -> None:
    directory = tmp_path / "artefacts"
    _register(runtime, directory)  # development: accepted
    production = replace(
        runtime, settings=runtime.settings.model_copy(update={"env": Environment.PRODUCTION})
    )
    with transaction(runtime.sessions) as session, pytest.raises(SetupNotAllowed):
        registry.load_statement(session, production, "score_at_least", artefacts=directory)
    with transaction(runtime.sessions) as session, pytest.raises(SetupNotAllowed):
        registry.register_statement(
            session,
            production,
            statement(directory, version=2),
            actor="p1:" + "a" * 43,
            artefacts=directory,
        )
    attested = statement(directory, version=2, provenance="ceremony_attested")
    with transaction(runtime.sessions) as session:
        registry.register_statement(
            session, production, attested, actor="p1:" + "a" * 43, artefacts=directory
        )
    with transaction(runtime.sessions) as session:
        loaded = registry.load_statement(session, production, "score_at_least", artefacts=directory)
    assert loaded.statement.setup_provenance == "ceremony_attested"


def test_http_reads_the_registry(runtime: Runtime, client: TestClient, tmp_path: Path) -> None:
    assert client.get("/v1/zk/statements").json() == []
    _register(runtime, tmp_path / "artefacts")
    listed = client.get("/v1/zk/statements")
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()] == ["score_at_least"]
    one = client.get("/v1/zk/statements/score_at_least")
    assert one.status_code == 200
    assert one.json()["statement"]["credential"]["claim"] == "/score_opening/score"
    missing = client.get("/v1/zk/statements/no_such_statement")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["code"] == "zk.statement_unknown"
    assert client.get("/v1/zk/statements/BAD!").status_code == 422


def test_cli_registers_lists_and_shows(
    tmp_path: Path,
    backend_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMONS_DATABASE_URL", backend_url)
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    directory = tmp_path / "artefacts"
    document = statement(directory)
    # A statement file whose artefacts are not the engine's: refused, nothing registered.
    path = tmp_path / "statement.json"
    path.write_text(json.dumps(document))
    assert main(["zk", "statements", "register", str(path), "--json"]) != 0
    _, err = capsys.readouterr()
    assert "zk.artefact_mismatch" in err
    assert main(["zk", "statements", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr()[0]) == []
    assert main(["zk", "statements", "show", "score_at_least"]) != 0
    assert "zk.statement_unknown" in capsys.readouterr()[1]
    # The engine's statements, from its manifest; a second run registers nothing.
    assert main(["zk", "statements", "register", "--dev", "--json"]) == 0
    registered = json.loads(capsys.readouterr()[0])
    assert sorted(v["id"] for v in registered) == sorted(
        [
            "age_at_least",
            "community_score_at_least",
            "income_bracket_at_most",
            "member_of_group",
            "score_at_least",
        ]
    )
    assert {v["setup_provenance"] for v in registered} == {"dev"}
    assert main(["zk", "statements", "register", "--dev", "--json"]) == 0
    assert json.loads(capsys.readouterr()[0]) == []
    assert main(["zk", "statements", "show", "member_of_group"]) == 0
    shown = capsys.readouterr()[0]
    assert "member_of_group version 1 (dev setup)" in shown
    assert "vkey member_of_group.vkey.json sha256" in shown
