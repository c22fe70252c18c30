"""Registration that cannot be squatted or probed (issue 12 item 5), on SQLite and PostgreSQL.

A self-registration stores its identifiers unverified and answers the same whatever others
registered, bound or erased; only an onboarding authority (a bank through its lender token,
an issuer desk through its own token) binds an identifier, bound identifiers are unique, and
an erased subject's bound identifiers cannot be bound again.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.lenders import access_token, admin_headers, register

from credit_commons.cli import main
from credit_commons.core.db import transaction
from credit_commons.core.errors import ExitCode
from credit_commons.events import EventRow
from credit_commons.identity.models import IdentifierLinkRow, IdentityRow, TombstoneRow
from credit_commons.runtime import Runtime

PAN = "AAPFU0939F"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def person(name: str, **identifiers: str) -> dict[str, Any]:
    return {"profile": {"name": name}, "identifiers": identifiers}


def desk(client: TestClient, admin: dict[str, str], name: str = "Lucknow desk") -> tuple[str, str]:
    made = client.post(
        "/v1/admin/onboarding-authorities",
        json={"kind": "issuer_desk", "name": name},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    return made.json()["authority_id"], made.json()["token"]


def bind(
    client: TestClient, headers: dict[str, str], token: str, value: str = PAN, kind: str = "pan"
) -> Any:
    return client.post(
        "/v1/onboarding/bindings",
        json={"identity_token": token, "kind": kind, "value": value, "evidence_ref": "KYC-7781"},
        headers=headers,
    )


def shape(response: Any) -> tuple[int, list[str], list[dict[str, str]]]:
    body = response.json()
    return response.status_code, sorted(body), body.get("identifiers")


def test_self_registration_answers_the_same_for_unseen_registered_and_erased(
    client: TestClient, runtime: Runtime
) -> None:
    admin = admin_headers(runtime)
    _, desk_token = desk(client, admin)
    unseen = client.post("/v1/identities", json=person("First", pan=PAN))
    registered = client.post("/v1/identities", json=person("Second", pan=PAN.lower()))
    # Bind another PAN, erase its holder: the tombstone must not show to a registration.
    other = "ABCPE1234F"
    holder = client.post("/v1/identities", json=person("Holder", pan=other)).json()
    assert bind(client, auth(desk_token), holder["identity_token"], other).status_code == 201
    erased = client.delete(
        f"/v1/identities/{holder['identity_token']}", headers=auth(holder["access_token"])
    )
    assert erased.status_code == 200
    after_erasure = client.post("/v1/identities", json=person("Third", pan=other))
    answers = [shape(r) for r in (unseen, registered, after_erasure)]
    assert answers[0] == answers[1] == answers[2], answers
    assert answers[0][0] == 201
    assert answers[0][2] == [{"kind": "pan", "status": "unverified"}]


def test_a_squatter_does_not_lock_out_the_owner(client: TestClient, runtime: Runtime) -> None:
    admin = admin_headers(runtime)
    _, desk_token = desk(client, admin)
    squatter = client.post("/v1/identities", json=person("Squatter", pan=PAN)).json()
    owner = client.post("/v1/identities", json=person("Owner", pan=PAN)).json()
    assert "identity_token" in owner
    # The squatter erases itself: an unverified identifier leaves no tombstone behind.
    gone = client.delete(
        f"/v1/identities/{squatter['identity_token']}", headers=auth(squatter["access_token"])
    )
    assert gone.status_code == 200
    bound = bind(client, auth(desk_token), owner["identity_token"])
    assert bound.status_code == 201, bound.text
    assert bound.json()["status"] == "bound"
    meta = client.get(
        f"/v1/identities/{owner['identity_token']}", headers=auth(owner["access_token"])
    ).json()
    assert meta["identifiers"] == [
        {
            "kind": "pan",
            "status": "bound",
            "authority_id": bound.json()["authority_id"],
            "evidence_digest": bound.json()["evidence_digest"],
            "bound_at": bound.json()["bound_at"],
        }
    ]


def test_binding_is_unique_and_refuses_an_erased_identifier(
    client: TestClient, runtime: Runtime
) -> None:
    admin = admin_headers(runtime)
    authority_id, desk_token = desk(client, admin)
    a, b, c = (
        client.post("/v1/identities", json=person(n, pan=PAN)).json() for n in ("A", "B", "C")
    )
    first = bind(client, auth(desk_token), a["identity_token"])
    assert first.status_code == 201, first.text
    assert first.json()["authority_id"] == authority_id
    # The members in the order the answer has always had (docs/onboarding.md).
    assert list(first.json()) == [
        "identity_token",
        "kind",
        "status",
        "authority_id",
        "evidence_digest",
        "bound_at",
        "event_id",
    ]
    again = bind(client, auth(desk_token), a["identity_token"])
    assert again.status_code == 201
    assert again.json()["event_id"] is None  # idempotent: nothing new happened
    elsewhere = bind(client, auth(desk_token), b["identity_token"])
    assert elsewhere.status_code == 409
    assert elsewhere.json()["code"] == "identity.identifier_bound_elsewhere"
    assert PAN not in elsewhere.text
    # B's own unverified link stays; it is not bound and blocks nobody.
    with transaction(runtime.read_sessions) as session:
        statuses = session.execute(
            sa.select(IdentifierLinkRow.identity_token, IdentifierLinkRow.status)
        ).all()
    assert sorted(s for t, s in statuses) == ["bound", "unverified", "unverified"]

    assert client.delete(
        f"/v1/identities/{a['identity_token']}", headers=auth(a["access_token"])
    ).json()["erased"]
    refused = bind(client, auth(desk_token), c["identity_token"])
    assert refused.status_code == 409
    assert refused.json()["code"] == "identity.identifier_erased"
    with transaction(runtime.read_sessions) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(TombstoneRow)) == 2


def test_the_bound_index_holds_in_the_database(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    with transaction(runtime.sessions) as session:
        for token in ("idt_aaaaaaaaaaaaaaaa", "idt_bbbbbbbbbbbbbbbb"):
            session.add(
                IdentityRow(
                    token=token,
                    kind="person",
                    roles="[]",
                    verification_level="none",
                    created_at=now,
                    updated_at=now,
                )
            )
        session.flush()
        for token in ("idt_aaaaaaaaaaaaaaaa", "idt_bbbbbbbbbbbbbbbb"):
            session.add(
                IdentifierLinkRow(
                    identity_token=token,
                    pseudonym="p1:x",
                    kind="pan",
                    status="unverified",
                    created_at=now,
                )
            )
    with pytest.raises(sa.exc.IntegrityError), transaction(runtime.sessions) as session:
        session.execute(sa.update(IdentifierLinkRow).values(status="bound"))


def test_only_an_active_authority_binds(client: TestClient, runtime: Runtime) -> None:
    admin = admin_headers(runtime)
    owner = client.post("/v1/identities", json=person("Owner", pan=PAN)).json()
    # Neither the borrower, nor an administrator, nor an ordinary lender is an authority.
    assert bind(client, auth(owner["access_token"]), owner["identity_token"]).status_code == 403
    refused = bind(client, admin, owner["identity_token"])
    assert refused.status_code == 403
    assert refused.json()["code"] == "identity.not_onboarding_authority"
    lender_id, key = register(client, admin)
    lender = auth(access_token(client, key, lender_id, int(time.time())))
    assert bind(client, lender, owner["identity_token"]).status_code == 403
    assert bind(client, {}, owner["identity_token"]).status_code == 401
    # Only an administrator designates; a borrower is told nothing exists.
    assert (
        client.post(
            "/v1/admin/onboarding-authorities",
            json={"kind": "issuer_desk", "name": "mine"},
            headers=auth(owner["access_token"]),
        ).status_code
        == 404
    )
    authority_id, desk_token = desk(client, admin)
    off = client.patch(
        f"/v1/admin/onboarding-authorities/{authority_id}", json={"active": False}, headers=admin
    )
    assert off.status_code == 200
    assert off.json()["active"] is False
    assert bind(client, auth(desk_token), owner["identity_token"]).status_code == 403


def test_a_bank_binds_with_its_lender_token_end_to_end(
    client: TestClient, runtime: Runtime
) -> None:
    admin = admin_headers(runtime)
    lender_id, key = register(client, admin)
    made = client.post(
        "/v1/admin/onboarding-authorities",
        json={"kind": "bank", "name": "Sahyog Bank", "lender_client_id": lender_id},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    assert "token" not in made.json()
    bank = auth(access_token(client, key, lender_id, int(time.time())))
    owner = client.post("/v1/identities", json=person("Owner", pan=PAN)).json()
    bound = bind(client, bank, owner["identity_token"])
    assert bound.status_code == 201, bound.text
    assert bound.json()["authority_id"] == made.json()["authority_id"]
    # Export and metadata name the authority and the evidence digest, never the reference.
    export = client.post(
        f"/v1/identities/{owner['identity_token']}/export", headers=auth(owner["access_token"])
    )
    (link,) = export.json()["identifiers"]
    assert link["status"] == "bound"
    assert link["authority_id"] == made.json()["authority_id"]
    assert "KYC-7781" not in export.text
    with transaction(runtime.read_sessions) as session:
        event = session.scalars(
            sa.select(EventRow).where(EventRow.type == "identity.identifier_bound")
        ).one()
    details = json.loads(event.details)
    assert details == {
        "kind": "pan",
        "authority": made.json()["authority_id"],
        "evidence": bound.json()["evidence_digest"],
    }
    assert "KYC-7781" not in event.details
    assert PAN not in event.details
    # A bank authority cannot be designated twice, nor for a lender that does not exist.
    twice = client.post(
        "/v1/admin/onboarding-authorities",
        json={"kind": "bank", "name": "again", "lender_client_id": lender_id},
        headers=admin,
    )
    assert twice.status_code == 409
    unknown = client.post(
        "/v1/admin/onboarding-authorities",
        json={"kind": "bank", "name": "ghost", "lender_client_id": "lnd_" + "A" * 22},
        headers=admin,
    )
    assert unknown.status_code == 404


def test_an_enterprise_is_registered_by_its_owner_only(client: TestClient) -> None:
    owner = client.post("/v1/identities", json=person("Owner")).json()
    enterprise = {
        "kind": "enterprise",
        "roles": ["business"],
        "profile": {"name": "Owner Traders"},
        "owner_token": owner["identity_token"],
    }
    anonymous = client.post("/v1/identities", json=enterprise)
    unknown = client.post(
        "/v1/identities", json={**enterprise, "owner_token": "idt_doesnotexist00"}
    )
    assert anonymous.status_code == unknown.status_code == 404
    assert anonymous.json()["detail"] == unknown.json()["detail"]
    made = client.post("/v1/identities", json=enterprise, headers=auth(owner["access_token"]))
    assert made.status_code == 201, made.text


def test_the_cli_designates_a_desk_and_binds_at_its_console(
    tmp_path: Path,
    backend_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMONS_DATABASE_URL", backend_url)

    def run(*args: str) -> tuple[int, Any]:
        code = main([*args, "--json"])
        out = capsys.readouterr().out
        return code, json.loads(out) if code == 0 else out

    assert run("db", "upgrade")[0] == 0
    code, made = run("identity", "create", "--name", "Owner", "--identifier", f"pan={PAN}")
    assert code == 0
    assert made["identifiers"] == [{"kind": "pan", "status": "unverified"}]
    code, desk_made = run("identity", "authority", "add", "--kind", "issuer_desk", "--name", "D")
    assert code == 0
    assert desk_made["token"].startswith("cct_")
    args = ["--authority", desk_made["authority_id"], "--evidence", "FORM-12"]
    code, bound = run(
        "identity", "bind", made["identity_token"], "--identifier", f"pan={PAN}", *args
    )
    assert code == 0
    assert (bound["status"], bound["authority_id"]) == ("bound", desk_made["authority_id"])
    code, other = run("identity", "create", "--name", "Other", "--identifier", f"pan={PAN}")
    assert code == 0
    code, _ = run("identity", "bind", other["identity_token"], "--identifier", f"pan={PAN}", *args)
    assert code == ExitCode.CONFLICT
    code, listed = run("identity", "authority", "list")
    assert [a["authority_id"] for a in listed] == [desk_made["authority_id"]]
    assert run("identity", "authority", "deactivate", desk_made["authority_id"])[0] == 0
    code, _ = run("identity", "bind", other["identity_token"], "--identifier", f"pan={PAN}", *args)
    assert code == ExitCode.FORBIDDEN
