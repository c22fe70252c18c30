"""``commons consent …`` on SQLite and PostgreSQL, through the CLI's single entry point."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from tests.conftest import migrate

from credit_commons.cli import main
from credit_commons.consent import requests as consent_requests
from credit_commons.consent.model import ConsentRequest
from credit_commons.core.db import transaction
from credit_commons.core.errors import ExitCode
from credit_commons.core.settings import Settings
from credit_commons.identity import service as identity_service
from credit_commons.identity.schemas import IdentityCreate
from credit_commons.runtime import Runtime


class Lender:
    client_id = "lnd_" + "c" * 22
    purposes = frozenset({"105"})


@pytest.fixture
def setup(
    tmp_path: Path, backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str, str]:
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMONS_DATABASE_URL", backend_url)
    rt = Runtime.build(Settings())
    migrate(rt.engine)
    try:
        with transaction(rt.sessions) as session:
            body = IdentityCreate.model_validate({"roles": ["business"], "profile": {"name": "B"}})
            made = identity_service.create_identity(session, rt, body)
        with transaction(rt.sessions) as session:
            consent = consent_requests.request_consent(
                session,
                rt,
                Lender(),
                ConsentRequest.model_validate(
                    {
                        "template": "loan_underwriting",
                        "borrower": made.identity_token,
                        "purpose": "105",
                        "consent_expiry": (rt.clock.now() + timedelta(days=3)).isoformat(),
                        "scopes": [{"type": "CreditReadinessCredential", "claims": []}],
                    }
                ),
            )
    finally:
        rt.close()
    return made.identity_token, made.access_token, consent.consent_id


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_consent_commands(setup: tuple[str, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    borrower, token, consent_id = setup
    code, out, _ = run(capsys, "consent", "list", borrower, "--json")
    assert code == 0
    assert [c["status"] for c in json.loads(out)] == ["PENDING"]
    # Without the borrower's token nobody consents.
    code, _, err = run(capsys, "consent", "approve", consent_id, "--token", "cct_forged")
    assert code == ExitCode.FORBIDDEN
    assert "Traceback" not in err
    code, out, _ = run(capsys, "consent", "approve", consent_id, "--token", token, "--json")
    assert code == 0
    assert json.loads(out)["status"] == "ACTIVE"
    for action, status in (("pause", "PAUSED"), ("resume", "ACTIVE"), ("revoke", "REVOKED")):
        code, out, _ = run(capsys, "consent", action, consent_id, "--token", token)
        assert code == 0
        assert status in out
    code, out, _ = run(capsys, "consent", "show", consent_id, "--json")
    shown = json.loads(out)
    assert shown["status"] == "REVOKED"
    assert shown["artefact"].count(".") == 2
    code, out, _ = run(capsys, "consent", "resume", consent_id, "--token", token)
    assert code == ExitCode.CONFLICT
    code, out, _ = run(capsys, "consent", "history", borrower, "--json")
    assert code == 0
    assert json.loads(out) == []
    code, out, _ = run(capsys, "consent", "expire", "--json")
    assert json.loads(out) == {"expired": 0}
    code, out, _ = run(capsys, "consent", "codes", "--json")
    assert json.loads(out) == []
    code, out, _ = run(capsys, "consent", "templates")
    assert "loan_underwriting" in out


def test_an_administrators_token_cannot_decide(
    setup: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 12 item 1 from the CLI: an administrator's cct_ token is not the borrower's.
    borrower, token, consent_id = setup
    code, out, _ = run(capsys, "admin", "token", "desk", "--json")
    admin = json.loads(out)["token"]
    code, _, err = run(capsys, "consent", "approve", consent_id, "--token", admin, "--json")
    assert code == ExitCode.NOT_FOUND
    assert "Traceback" not in err
    unknown_code, _, _ = run(capsys, "consent", "approve", "cns_" + "0" * 26, "--token", admin)
    assert unknown_code == code
    code, _, _ = run(
        capsys, "consent", "revoke-all", borrower, "--lender", Lender.client_id, "--token", admin
    )
    assert code == ExitCode.NOT_FOUND
    code, out, _ = run(capsys, "consent", "show", consent_id, "--json")
    assert json.loads(out)["status"] == "PENDING"
    assert json.loads(out)["approval"] is None
    # Both attempts are in the borrower's history, the administrator named by pseudonym.
    code, out, _ = run(capsys, "consent", "history", borrower, "--json")
    attempts = json.loads(out)
    assert [(e["operation"], e["outcome"], e["reason"]) for e in attempts] == [
        ("consent.revoke_all", "denied", "consent.not_authorised"),
        ("consent.approve", "denied", "consent.not_authorised"),
    ]
    assert {e["actor"] for e in attempts} == {attempts[0]["actor"]}
    assert attempts[0]["actor"].startswith("p1:")
    assert attempts[0]["actor_kind"] == "other"
    # The borrower's own token decides.
    code, out, _ = run(capsys, "consent", "approve", consent_id, "--token", token, "--json")
    assert code == 0
    assert json.loads(out)["approval"] == "self"
