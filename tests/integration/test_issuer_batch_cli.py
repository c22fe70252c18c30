"""``commons issuer issue-batch`` on SQLite and PostgreSQL: JSON lines in, one committed
transaction per batch, results as JSON lines, and an exact resume point on an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.factories import readiness_claims

from credit_commons.cli import main
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_decode
from credit_commons.core.settings import Settings
from credit_commons.identity import service as identity_service
from credit_commons.identity.schemas import IdentityCreate
from credit_commons.issuer.models import CredentialRow
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime


@pytest.fixture
def env(tmp_path: Path, backend_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMONS_DATABASE_URL", backend_url)
    assert main(["db", "upgrade"]) == 0
    return tmp_path


def _subjects(n: int) -> list[str]:
    rt = Runtime.build(Settings())
    try:
        with transaction(rt.sessions) as session:
            body = IdentityCreate.model_validate({"roles": ["business"], "profile": {"name": "M"}})
            return [
                identity_service.create_identity(session, rt, body).identity_token for _ in range(n)
            ]
    finally:
        rt.close()


def _count() -> int:
    rt = Runtime.build(Settings())
    try:
        with transaction(rt.sessions) as session:
            return int(session.scalar(select(func.count()).select_from(CredentialRow)) or 0)
    finally:
        rt.close()


def _line(subject: str, **claims: object) -> str:
    holder = public_key_to_jwk(PrivateKey.generate(KeyType.ED25519).public_key)
    return json.dumps(
        {
            "type": "CreditReadinessCredential",
            "subject": subject,
            "claims": readiness_claims(subject, 650, **claims),
            "holder_jwk": holder,
        }
    )


def test_issue_batch_writes_results_per_committed_batch(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subjects = _subjects(5)
    source = env / "requests.jsonl"
    source.write_text("\n".join([_line(s) for s in subjects[:3]] + ["", _line(subjects[3])]) + "\n")
    capsys.readouterr()
    assert main(["issuer", "issue-batch", str(source), "--batch", "2"]) == 0
    out, err = capsys.readouterr()
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in results] == [1, 2, 3, 5]  # line 4 is blank
    assert all(r["credential"].count("~") >= 2 and r["credential_id"] for r in results)
    assert "committed 2 credentials (through line 2)" in err
    assert "committed 4 credentials (through line 5)" in err
    assert _count() == 4


def test_issue_batch_builds_on_worker_processes(
    env: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    subjects = _subjects(101)
    source = env / "requests.jsonl"
    source.write_text("\n".join(_line(s) for s in subjects) + "\n")
    capsys.readouterr()
    code = main(["issuer", "issue-batch", str(source), "--batch", "100", "--workers", "1"])
    assert code == 0
    out, err = capsys.readouterr()
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in results] == list(range(1, 102))
    assert "committed 100 credentials (through line 100)" in err
    assert not [r for r in caplog.records if r.name.endswith("build_pool")]  # none failed
    assert _count() == 101
    for result, subject in zip(results, subjects, strict=True):
        payload = json.loads(b64url_decode(result["credential"].split(".")[1]))
        assert payload["enterprise"]["identity_token"] == subject


def test_issue_batch_stops_with_the_exact_resume_point(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subjects = _subjects(5)
    lines = [_line(s) for s in subjects]
    lines[3] = _line(subjects[3], credit_tier="Z")  # fails the schema: batch 2 rolls back
    source, results = env / "requests.jsonl", env / "results.jsonl"
    source.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    code = main(
        ["issuer", "issue-batch", str(source), "--batch", "2", "--out", str(results), "--json"]
    )
    assert code != 0
    _, err = capsys.readouterr()
    problem = json.loads(err.strip().splitlines()[-1])
    assert problem["code"] == "credential.claims_invalid"
    assert problem["line"] == 4
    assert problem["committed_through"] == 2
    assert "rerun with --skip 2" in err
    assert [json.loads(x)["line"] for x in results.read_text().splitlines()] == [1, 2]
    assert _count() == 2

    # Fixed, and resumed after the committed lines: nothing is issued twice.
    lines[3] = _line(subjects[3])
    source.write_text("\n".join(lines) + "\n")
    code = main(
        ["issuer", "issue-batch", str(source), "--batch", "2", "--out", str(results), "--skip", "2"]
    )
    assert code == 0
    assert [json.loads(x)["line"] for x in results.read_text().splitlines()] == [1, 2, 3, 4, 5]
    assert _count() == 5


def test_issue_batch_names_a_malformed_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    subjects = _subjects(1)
    source = env / "requests.jsonl"
    source.write_text(_line(subjects[0]) + "\n{not json\n")
    capsys.readouterr()
    assert main(["issuer", "issue-batch", str(source), "--batch", "1", "--json"]) != 0
    out, err = capsys.readouterr()
    problem = json.loads(err.strip().splitlines()[-1])
    assert problem["line"] == 2
    assert problem["committed_through"] == 1
    assert [json.loads(x)["line"] for x in out.splitlines()] == [1]
    assert _count() == 1


def test_trust_add_list_remove(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    issuer = "https://coop.example/issuers/agri"
    capsys.readouterr()
    assert main(["issuer", "trust", "add", issuer, "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["kind"] == "https"
    assert main(["issuer", "trust", "add", issuer]) != 0  # already trusted
    assert main(["issuer", "trust", "add", "http://plain.example"]) != 0
    capsys.readouterr()
    assert main(["issuer", "trust", "list", "--json"]) == 0
    assert [t["issuer"] for t in json.loads(capsys.readouterr().out)] == [issuer]
    assert main(["issuer", "trust", "remove", issuer]) == 0
    assert main(["issuer", "trust", "remove", added["id"]]) != 0  # gone
    capsys.readouterr()
    assert main(["issuer", "trust", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
