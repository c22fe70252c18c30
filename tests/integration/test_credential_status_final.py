"""Revocation is final (issue 12 item 4), on SQLite and PostgreSQL, over HTTP, the CLI and
the status-list layer itself.

IETF Token Status List ("Status Types"): 0x01 INVALID is a revocation, 0x02 SUSPENDED "is
reversible" — so only a suspended credential can be reinstated.  W3C Bitstring Status List:
the ``revocation`` purpose cannot be undone.  A refused change is a 409 problem+json and
writes nothing: no status change, no new list version, no event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.factories import readiness_claims

from credit_commons.cli import main
from credit_commons.core.db import transaction
from credit_commons.core.errors import ConflictError, ExitCode
from credit_commons.events import EventRow
from credit_commons.formats.status_list import TokenStatus
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer import status
from credit_commons.issuer.models import CredentialRow, StatusListRow
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime

CHANGED = "credential.status_changed"


def _issue(client: TestClient, admin: dict[str, str], fmt: str) -> str:
    msme = client.post("/v1/identities", json={"profile": {"name": "Status Traders"}}).json()
    holder = PrivateKey.generate(KeyType.ED25519)
    body: dict[str, Any] = {
        "type": "CreditReadinessCredential",
        "subject": msme["identity_token"],
        "format": fmt,
        "claims": readiness_claims(msme["identity_token"], disclose_score=fmt == "dc+sd-jwt"),
        "holder_jwk": public_key_to_jwk(holder.public_key),
    }
    issued = client.post("/v1/credentials", json=body, headers=admin)
    assert issued.status_code == 201, issued.text
    return str(issued.json()["credential_id"])


def _state(runtime: Runtime, credential_id: str) -> tuple[TokenStatus, int, int]:
    # The credential's status, its list's version, and the number of status events.
    with transaction(runtime.read_sessions) as session:
        row = session.get(CredentialRow, credential_id)
        assert row is not None
        kind = status.StatusKind.TOKEN if row.format == "dc+sd-jwt" else status.StatusKind.BITSTRING
        ref = status.StatusRef(row.status_list_id, row.status_index, kind)
        listed = session.get(StatusListRow, row.status_list_id)
        assert listed is not None
        events = session.scalar(
            select(func.count()).select_from(EventRow).where(EventRow.type == CHANGED)
        )
        return status.get_status(session, ref), listed.version, int(events or 0)


def _refused(client: TestClient, admin: dict[str, str], credential_id: str, action: str) -> None:
    response = client.post(f"/v1/credentials/{credential_id}/{action}", headers=admin)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "credential.status_transition_invalid"


@pytest.fixture
def admin(client: TestClient, runtime: Runtime) -> dict[str, str]:
    with transaction(runtime.sessions) as session:
        token, _ = issue_admin_token(session, runtime, "issuer-desk")
    return {"Authorization": f"Bearer {token}"}


def test_a_revoked_sd_jwt_credential_stays_revoked(
    client: TestClient, runtime: Runtime, admin: dict[str, str]
) -> None:
    credential_id = _issue(client, admin, "dc+sd-jwt")
    # Nothing to reinstate in a valid credential.
    before = _state(runtime, credential_id)
    _refused(client, admin, credential_id, "reinstate")
    assert _state(runtime, credential_id) == before
    # Suspension is reversible...
    assert client.post(f"/v1/credentials/{credential_id}/suspend", headers=admin).status_code == 200
    _refused(client, admin, credential_id, "suspend")  # already suspended
    assert (
        client.post(f"/v1/credentials/{credential_id}/reinstate", headers=admin).json()["status"]
        == "valid"
    )
    # ...revocation is not: reinstating, suspending or revoking again writes nothing.
    assert client.post(f"/v1/credentials/{credential_id}/revoke", headers=admin).status_code == 200
    revoked = _state(runtime, credential_id)
    assert revoked[0] == TokenStatus.INVALID
    for action in ("reinstate", "suspend", "revoke"):
        _refused(client, admin, credential_id, action)
        assert _state(runtime, credential_id) == revoked


def test_a_suspended_credential_can_be_revoked(
    client: TestClient, runtime: Runtime, admin: dict[str, str]
) -> None:
    credential_id = _issue(client, admin, "dc+sd-jwt")
    assert client.post(f"/v1/credentials/{credential_id}/suspend", headers=admin).status_code == 200
    assert client.post(f"/v1/credentials/{credential_id}/revoke", headers=admin).status_code == 200
    revoked = _state(runtime, credential_id)
    assert revoked[0] == TokenStatus.INVALID
    _refused(client, admin, credential_id, "reinstate")
    assert _state(runtime, credential_id) == revoked


def test_a_revoked_bitstring_credential_stays_revoked(
    client: TestClient, runtime: Runtime, admin: dict[str, str]
) -> None:
    credential_id = _issue(client, admin, "vc+jwt")
    _refused(client, admin, credential_id, "reinstate")
    assert client.post(f"/v1/credentials/{credential_id}/revoke", headers=admin).status_code == 200
    revoked = _state(runtime, credential_id)
    for action in ("reinstate", "revoke"):
        _refused(client, admin, credential_id, action)
        assert _state(runtime, credential_id) == revoked
    # A bitstring cannot express suspension at all (a format limit, not a state conflict).
    suspended = client.post(f"/v1/credentials/{credential_id}/suspend", headers=admin)
    assert suspended.status_code == 422
    assert _state(runtime, credential_id) == revoked


@pytest.mark.parametrize("kind", list(status.StatusKind))
def test_set_status_never_leaves_invalid(runtime: Runtime, kind: status.StatusKind) -> None:
    # Defence in depth: the status-list layer refuses to undo a revocation whoever asks.
    with transaction(runtime.sessions) as session:
        ref = status.allocate(session, runtime, kind)
        status.set_status(session, runtime, ref, TokenStatus.INVALID)
    targets = [TokenStatus.VALID]
    if kind is status.StatusKind.TOKEN:
        targets.append(TokenStatus.SUSPENDED)
    for target in targets:
        with pytest.raises(ConflictError), transaction(runtime.sessions) as session:
            status.set_status(session, runtime, ref, target)
        with transaction(runtime.read_sessions) as session:
            assert status.get_status(session, ref) == TokenStatus.INVALID


def test_cli_status_commands(
    client: TestClient,
    runtime: Runtime,
    admin: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COMMONS_DATA_DIR", str(runtime.settings.data_dir))
    monkeypatch.setenv("COMMONS_DATABASE_URL", runtime.settings.resolved_database_url)
    credential_id = _issue(client, admin, "dc+sd-jwt")
    assert main(["issuer", "reinstate", credential_id]) == ExitCode.CONFLICT
    assert main(["issuer", "suspend", credential_id, "--json"]) == 0
    assert '"suspended"' in capsys.readouterr().out
    assert main(["issuer", "revoke", credential_id]) == 0
    revoked = _state(runtime, credential_id)
    capsys.readouterr()
    assert main(["issuer", "reinstate", credential_id, "--json"]) == ExitCode.CONFLICT
    assert "Traceback" not in capsys.readouterr().err
    assert _state(runtime, credential_id) == revoked
