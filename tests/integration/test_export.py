"""The export holds what the platform holds (issue 12 item 14), on SQLite and PostgreSQL.

A borrower with several credentials (SD-JWT and VC-JWT; valid, revoked, suspended), consents
in several states, delegations on both sides, a bound identifier and allowed and denied
accesses exports over HTTP; every section is compared with direct queries of the tables (and
the vault, for the credentials themselves).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.factories import readiness_claims
from tests.integration.consent_world import BASE, CRC, World

from credit_commons.cli import main
from credit_commons.consent.models import ConsentRow
from credit_commons.core.db import transaction
from credit_commons.events import EventRow
from credit_commons.identity.models import DelegationRow, IdentifierLinkRow
from credit_commons.issuer import status
from credit_commons.issuer.models import CredentialRow
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.lenders.models import LenderClientRow

PAN = "AAPFU0939F"


def _issue(world: World, fmt: str = "dc+sd-jwt") -> str:
    holder = PrivateKey.generate(KeyType.ED25519)
    made = world.http.post(
        "/v1/credentials",
        json={
            "type": CRC,
            "subject": world.borrower,
            "claims": readiness_claims(world.borrower),
            "holder_jwk": public_key_to_jwk(holder.public_key),
            "format": fmt,
        },
        headers=world.admin,
    )
    assert made.status_code == 201, made.text
    return str(made.json()["credential_id"])


def _subject_with_everything(world: World) -> None:
    http = world.http
    # A W3C revocation bitstring cannot express suspension: the SD-JWT is the suspended one.
    revoked, suspended = _issue(world, "vc+jwt"), _issue(world)
    _issue(world, "vc+jwt")
    for credential_id, action in ((revoked, "revoke"), (suspended, "suspend")):
        done = http.post(f"/v1/credentials/{credential_id}/{action}", headers=world.admin)
        assert done.status_code == 200, done.text

    active = world.consent()
    world.consent(approve=False)  # pending
    world.decide(world.consent(), "pause")
    world.decide(world.consent(), "revoke")
    world.decide(world.consent(approve=False), "reject")
    assert world.fetch(active).status_code == 200  # allowed
    revoked_consent = world.consent()
    world.decide(revoked_consent, "revoke")
    assert world.fetch(revoked_consent).status_code == 403  # denied, naming the borrower

    agent = http.post(
        "/v1/identities", json={"roles": ["field_agent"], "profile": {"name": "Agent"}}
    ).json()
    guardian = http.post("/v1/identities", json={"profile": {"name": "Guardian"}}).json()
    offered = http.post(
        f"/v1/identities/{world.borrower}/delegations",
        json={
            "delegatee_token": agent["identity_token"],
            "type": "field_agent_assist",
            "permissions": ["assist:consent"],
        },
        headers=world.as_borrower,
    )
    assert offered.status_code == 201, offered.text
    accepted = http.post(
        f"/v1/identities/{agent['identity_token']}/delegations/{offered.json()['id']}/accept",
        headers={"Authorization": f"Bearer {agent['access_token']}"},
    )
    assert accepted.status_code == 200, accepted.text
    towards = http.post(
        f"/v1/identities/{guardian['identity_token']}/delegations",
        json={
            "delegatee_token": world.borrower,
            "type": "guardian_ward",
            "permissions": ["read:profile"],
        },
        headers={"Authorization": f"Bearer {guardian['access_token']}"},
    )
    assert towards.status_code == 201, towards.text
    gone = http.delete(
        f"/v1/identities/{world.borrower}/delegations/{towards.json()['id']}",
        headers=world.as_borrower,
    )
    assert gone.status_code == 200, gone.text

    desk = http.post(
        "/v1/admin/onboarding-authorities",
        json={"kind": "issuer_desk", "name": "Desk"},
        headers=world.admin,
    ).json()
    bound = http.post(
        "/v1/onboarding/bindings",
        json={
            "identity_token": world.borrower,
            "kind": "pan",
            "value": PAN,
            "evidence_ref": "KYC-1",
        },
        headers={"Authorization": f"Bearer {desk['token']}"},
    )
    assert bound.status_code == 201, bound.text


def test_every_section_matches_the_tables(world: World) -> None:
    _subject_with_everything(world)
    response = world.http.post(f"/v1/identities/{world.borrower}/export", headers=world.as_borrower)
    assert response.status_code == 200, response.text
    export = response.json()
    rt, token = world.rt, world.borrower
    subject = rt.pseudonymizer.pseudonym("identity", token)

    with transaction(rt.read_sessions) as session:
        credentials = session.scalars(
            sa.select(CredentialRow).where(CredentialRow.subject_token == token)
        ).all()
        expected_credentials = {}
        for row in credentials:
            kind = (
                status.StatusKind.TOKEN
                if row.format == "dc+sd-jwt"
                else status.StatusKind.BITSTRING
            )
            current = status.get_status(
                session, status.StatusRef(row.status_list_id, row.status_index, kind)
            )
            text = rt.vault.open(
                session, bytes(row.sealed), subject=token, purpose="credentials", record=row.id
            ).decode()
            expected_credentials[row.id] = (row.type_name, row.format, int(current), text)
        consents = {
            row.id: row
            for row in session.scalars(
                sa.select(ConsentRow).where(ConsentRow.principal_token == token)
            )
        }
        delegations = {
            row.id: row
            for row in session.scalars(
                sa.select(DelegationRow).where(
                    sa.or_(
                        DelegationRow.delegator_token == token,
                        DelegationRow.delegatee_token == token,
                    )
                )
            )
        }
        links = session.scalars(
            sa.select(IdentifierLinkRow).where(IdentifierLinkRow.identity_token == token)
        ).all()
        access_events = session.scalars(
            sa.select(EventRow).where(
                EventRow.subject == subject, EventRow.type.in_(["access.allowed", "access.denied"])
            )
        ).all()
        names = {r.client_id: r.name for r in session.scalars(sa.select(LenderClientRow))}
        event_ids = session.scalars(sa.select(EventRow.id).where(EventRow.subject == subject)).all()

    # Credentials: metadata and the credentials themselves, as the vault holds them.
    assert len(expected_credentials) == 4
    got = {c["credential_id"]: c for c in export["credentials"]}
    assert set(got) == set(expected_credentials)
    words = {0: "valid", 1: "revoked", 2: "suspended"}
    for credential_id, (type_name, fmt, current, text) in expected_credentials.items():
        entry = got[credential_id]
        assert (entry["type"], entry["format"]) == (type_name, fmt)
        assert entry["status"] == words[current]
        assert entry["credential"] == text
        assert entry["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert sorted(c["status"] for c in export["credentials"]) == [
        "revoked",
        "suspended",
        "valid",
        "valid",
    ]

    # Consents: terms, status, approval and artefacts, in five states.
    assert {c["consent_id"] for c in export["consents"]} == set(consents)
    for entry in export["consents"]:
        row = consents[entry["consent_id"]]
        assert entry["status"] == row.status
        assert entry["approval"] == row.approval
        assert entry["artefact"] == row.artefact
        assert entry["lender"] == row.lender_client_id
        assert entry["scopes"] == json.loads(row.scopes)
        assert entry["purpose"]["code"] == row.purpose_code
        assert entry["uses"] == row.uses
    assert {c["status"] for c in export["consents"]} >= {
        "ACTIVE",
        "PENDING",
        "PAUSED",
        "REVOKED",
        "REJECTED",
    }

    # Delegations on both sides, with their acceptance and revocation.
    assert {d["id"] for d in export["delegations"]} == set(delegations)
    for entry in export["delegations"]:
        row = delegations[entry["id"]]
        assert entry["role"] == ("delegator" if row.delegator_token == token else "delegatee")
        assert entry["permissions"] == json.loads(row.permissions)
        assert (entry["revoked_at"] is None) == (row.revoked_at is None)
    assert {d["role"] for d in export["delegations"]} == {"delegator", "delegatee"}

    # Identifier bindings: kind, status, authority, no raw value.
    assert [(i["kind"], i["status"], i["pseudonym"]) for i in export["identifiers"]] == [
        (link.kind, link.status, link.pseudonym) for link in links
    ]
    assert export["identifiers"][0]["authority_id"].startswith("oba_")
    assert PAN not in json.dumps(export)

    # Access history: every allowed and denied access, each lender named.
    assert {a["event_id"] for a in export["access_history"]} == {e.id for e in access_events}
    outcomes = {a["outcome"] for a in export["access_history"]}
    assert outcomes == {"allowed", "denied"}
    for entry in export["access_history"]:
        assert entry["lender"] == world.lender
        assert entry["lender_name"] == names[world.lender]

    # Every event about the subject, up to the export itself (recorded after it was built).
    assert [e["id"] for e in export["events"]] == sorted(event_ids)[: len(export["events"])]
    assert len(event_ids) == len(export["events"]) + 1


def test_the_pdf_shows_the_new_sections(world: World, tmp_path: Path) -> None:
    _subject_with_everything(world)
    response = world.http.post(
        f"/v1/identities/{world.borrower}/export",
        params={"format": "pdf"},
        headers=world.as_borrower,
    )
    assert response.status_code == 200
    path = tmp_path / "export.pdf"
    path.write_bytes(response.content)
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True
    ).stdout.decode()
    for heading in ("Credentials", "Consents", "Delegations", "Who accessed your data"):
        assert heading in text
    for word in ("revoked", "suspended", "PAUSED", "REJECTED", "field_agent_assist", "bound"):
        assert word in text
    assert "Lender One" in text


def test_the_cli_export_holds_the_sections(
    world: World,
    tmp_path: Path,
    backend_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _subject_with_everything(world)
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMONS_DATABASE_URL", backend_url)
    monkeypatch.setenv("COMMONS_PUBLIC_URL", BASE)
    capsys.readouterr()
    assert main(["privacy", "export", world.borrower]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["credentials"]) == 4
    assert all(c["credential"] for c in data["credentials"])
    assert len(data["consents"]) == 6
    assert len(data["delegations"]) == 2
    assert {a["outcome"] for a in data["access_history"]} == {"allowed", "denied"}


def test_the_cli_says_where_the_pdf_went(
    world: World,
    tmp_path: Path,
    backend_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Issue 14 item 11: with the export on stdout the PDF's place is said on stderr (stdout
    # stays the export); with --out both places are said, and --json lists them.
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMONS_DATABASE_URL", backend_url)
    monkeypatch.setenv("COMMONS_PUBLIC_URL", BASE)
    capsys.readouterr()
    pdf = tmp_path / "export.pdf"
    assert main(["privacy", "export", world.borrower, "--pdf", str(pdf)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["subject"]
    # The note is a line of its own on stderr (other lines there may come from logging).
    assert f"PDF written to {pdf} (mode 0600)" in err.splitlines()
    assert "PDF written" not in out
    assert pdf.read_bytes().startswith(b"%PDF-")
    out_file, pdf2 = tmp_path / "export.json", tmp_path / "again.pdf"
    args = ["privacy", "export", world.borrower, "--out", str(out_file), "--pdf", str(pdf2)]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == (
        f"export written to {out_file} (mode 0600); PDF written to {pdf2} (mode 0600)"
    )
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"written": str(out_file), "pdf": str(pdf2)}
