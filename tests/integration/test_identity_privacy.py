"""Identities over HTTP on SQLite and PostgreSQL: register, authorise, export, erase.

After an erasure, no sealed field of the subject opens, and a full dump of the database —
the SQLite file, or `pg_dump` — holds none of their personal strings, identifier values or
identifier pseudonyms.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.events import EventRow
from credit_commons.identity.auth import issue_admin_token
from credit_commons.identity.models import IdentifierLinkRow, IdentityRow
from credit_commons.runtime import Runtime
from credit_commons.vault.errors import DecryptionFailed

PERSON = {
    "roles": ["citizen", "business"],
    "profile": {
        "name": "Ravi Kumar Sharma",
        "phone": "+919812345678",
        "email": "ravi.sharma@example.in",
        "address": "12 Gandhi Marg, Lucknow",
    },
    "attributes": {"birth_date": "1960-04-01", "income_annual": 420000, "state": "UP"},
    "identifiers": {"aadhaar": "9999 9999 0019", "pan": "AAPFU0939F", "mobile": "+91 98123 45678"},
}
SECRET_STRINGS = [
    "Ravi Kumar Sharma",
    "9812345678",
    "ravi.sharma@example.in",
    "Gandhi Marg",
    "999999990019",
    "9999 9999 0019",
    "AAPFU0939F",
    "1960-04-01",
    "420000",
]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def database_dump(runtime: Runtime, settings: Settings) -> bytes:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        raw = runtime.engine.raw_connection()  # outside any transaction, as a checkpoint needs
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
        path = Path(url.removeprefix("sqlite:///"))
        files = [path, path.with_name(path.name + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    parsed = sa.engine.make_url(url)
    schema = parsed.query["options"].split("search_path=")[1]
    env = {**os.environ, "PGPASSWORD": parsed.password or ""}
    result = subprocess.run(
        [
            "pg_dump",
            "-h",
            parsed.host or "127.0.0.1",
            "-p",
            str(parsed.port or 5432),
            "-U",
            parsed.username or "postgres",
            "-n",
            schema,
            "--data-only",
            parsed.database or "test",
        ],
        capture_output=True,
        check=True,
        env=env,
    )
    return result.stdout


def test_register_read_export_and_authorisation(client: TestClient, runtime: Runtime) -> None:
    created = client.post("/v1/identities", json=PERSON)
    assert created.status_code == 201, created.text
    body = created.json()
    token, access = body["identity_token"], body["access_token"]
    assert created.headers["cache-control"] == "no-store"
    assert client.get(f"/v1/identities/{token}", headers=auth(access)).json()["roles"] == [
        "business",
        "citizen",
    ]
    profile = client.get(f"/v1/identities/{token}/profile", headers=auth(access)).json()
    assert profile["name"] == "Ravi Kumar Sharma"
    export = client.post(f"/v1/identities/{token}/export", headers=auth(access)).json()
    assert export["format"] == "credit-commons-export/v1"
    assert export["attributes"]["income_annual"] == 420000
    assert {i["kind"] for i in export["identifiers"]} == {"aadhaar", "pan", "mobile"}
    assert [e["type"] for e in export["events"]] == ["identity.created"]

    # The export holds everything the database holds about the subject, compared with
    # direct queries: identifier links, the sealed profile and attributes, the events.
    subject = runtime.pseudonymizer.pseudonym("identity", token)
    with transaction(runtime.read_sessions) as session:
        links = session.scalars(
            sa.select(IdentifierLinkRow.pseudonym).where(IdentifierLinkRow.identity_token == token)
        ).all()
        row = session.get(IdentityRow, token)
        assert row is not None
        assert row.profile_sealed is not None
        assert row.attributes_sealed is not None
        sealed_profile = json.loads(
            runtime.vault.open(
                session,
                row.profile_sealed,
                subject=token,
                purpose="profile",
                record=f"identity:{token}:profile",
            )
        )
        sealed_attributes = json.loads(
            runtime.vault.open(
                session,
                row.attributes_sealed,
                subject=token,
                purpose="attributes",
                record=f"identity:{token}:attributes",
            )
        )
        event_ids = session.scalars(sa.select(EventRow.id).where(EventRow.subject == subject)).all()
    assert sorted(links) == sorted(i["pseudonym"] for i in export["identifiers"])
    assert export["profile"] == sealed_profile
    assert export["attributes"] == sealed_attributes
    assert sorted(event_ids)[:1] == [e["id"] for e in export["events"]]
    assert export["subject"]["roles"] == json.loads(row.roles)

    pdf = client.post(
        f"/v1/identities/{token}/export", params={"format": "pdf"}, headers=auth(access)
    )
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert pdf.headers["cache-control"] == "no-store"

    other = client.post("/v1/identities", json={"profile": {"name": "Sita Devi"}}).json()
    for path in (f"/v1/identities/{token}", f"/v1/identities/{token}/profile"):
        assert client.get(path).status_code == 401
        forbidden = client.get(path, headers=auth(other["access_token"]))
        missing = client.get(
            "/v1/identities/idt_doesnotexist00", headers=auth(other["access_token"])
        )
        assert forbidden.status_code == missing.status_code == 404
        assert forbidden.json()["detail"] == missing.json()["detail"]
    assert client.get(f"/v1/identities/{token}", headers=auth("cct_forged")).status_code == 401

    # The same PAN self-asserted again is stored unverified too: the answer does not say
    # whether anybody registered it (binding is for onboarding authorities, see
    # test_onboarding.py).
    duplicate = client.post("/v1/identities", json={**PERSON, "identifiers": {"pan": "aapfu0939f"}})
    assert duplicate.status_code == 201
    assert sorted(duplicate.json()) == sorted(body)
    bad = client.post(
        "/v1/identities", json={**PERSON, "identifiers": {"aadhaar": "9999 9999 0018"}}
    )
    assert bad.status_code == 422
    assert "9999" not in bad.text
    extra = client.post("/v1/identities", json={**PERSON, "unexpected": 1})
    assert extra.status_code == 422


def test_erasure_leaves_nothing_personal_in_a_full_dump(
    client: TestClient, runtime: Runtime, settings: Settings
) -> None:
    body = client.post("/v1/identities", json=PERSON).json()
    token, access = body["identity_token"], body["access_token"]
    with transaction(runtime.read_sessions) as session:
        row = session.get(IdentityRow, token)
        assert row is not None
        sealed = row.profile_sealed
        pseudonyms = list(
            session.scalars(
                sa.select(IdentifierLinkRow.pseudonym).where(
                    IdentifierLinkRow.identity_token == token
                )
            )
        )
    before = database_dump(runtime, settings)
    assert all(p.encode() in before for p in pseudonyms)  # the dump does see links while they exist

    erased = client.delete(f"/v1/identities/{token}", headers=auth(access))
    assert erased.status_code == 200, erased.text
    assert erased.json()["subject_keys_destroyed"] == 2

    assert sealed is not None
    runtime.vault.drop_cache()
    with transaction(runtime.read_sessions) as session, pytest.raises(DecryptionFailed):
        runtime.vault.open(
            session, sealed, subject=token, purpose="profile", record=f"identity:{token}:profile"
        )

    dump = database_dump(runtime, settings)
    for secret in [*SECRET_STRINGS, *pseudonyms, token]:
        assert secret.encode() not in dump, f"{secret!r} survived the erasure"
    # The access token died with the subject.  A self-registration with the same (never
    # bound) identifiers answers as any other: it reveals nothing about the erasure.
    assert client.get(f"/v1/identities/{token}", headers=auth(access)).status_code == 401
    assert client.post("/v1/identities", json=PERSON).status_code == 201
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "ops")
    assert client.get(f"/v1/identities/{token}", headers=auth(admin)).status_code == 404
