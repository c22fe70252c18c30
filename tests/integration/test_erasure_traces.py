"""Erasure leaves no linkable trace (issue 13 item 3), on SQLite and PostgreSQL.

A borrower is registered, holds a credential, has a pending credential offer, a data-subject
request, a consent with an access and an assisted consent whose one-time code went through
the embedded notifier; then they are erased.  Afterwards no table (every text and binary
column of every table, the log's events included), no file under the data directory and, on
SQLite, not the database file itself holds their identity token, its SHA-256, or the
unkeyed event-object digest anyone holding the token could compute.  A second runtime — what
another process holds in memory — stops serving the offer and the subject's keys at once.
Credentials issued to the subject stay verifiable by their holders.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.factories import readiness_claims
from tests.integration.consent_world import BASE, CRC, World
from tests.integration.test_consent_authority import _delegate, _identity

from credit_commons.consent import notify
from credit_commons.core.db import transaction
from credit_commons.core.encoding import canonical_json
from credit_commons.gateway.app import create_app
from credit_commons.identity.models import IdentityRow
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime
from credit_commons.vault.errors import DecryptionFailed


def traces(token: str) -> dict[str, bytes]:
    """What must not survive: the token, and what anyone holding it can compute."""
    return {
        "token": token.encode(),
        "sha256": hashlib.sha256(token.encode()).hexdigest().encode(),
        # What event objects were before they were keyed: SHA-256 of {"id", "kind"}.
        "object digest": hashlib.sha256(canonical_json({"id": token, "kind": "identity"}))
        .hexdigest()
        .encode(),
    }


def scan_tables(rt: Runtime, needles: dict[str, bytes]) -> list[str]:
    """Every text and binary value of every table that holds one of ``needles``."""
    found = []
    inspector = sa.inspect(rt.engine)
    columns = [
        (table, c["name"])
        for table in inspector.get_table_names()
        for c in inspector.get_columns(table)
        if isinstance(c["type"], sa.String | sa.Text | sa.LargeBinary)
    ]
    with transaction(rt.read_sessions) as session:
        for table, column in columns:
            values = session.execute(
                sa.text(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL')
            ).scalars()
            for value in values:
                data = value.encode() if isinstance(value, str) else bytes(value)
                found += [f"{table}.{column}: {n}" for n, v in needles.items() if v in data]
    return found


def scan_files(root: Path, needles: dict[str, bytes]) -> list[str]:
    return [
        f"{path}: {name}"
        for path in root.rglob("*")
        if path.is_file()
        for name, value in needles.items()
        if value in path.read_bytes()
    ]


def sqlite_file(rt: Runtime) -> Path | None:
    url = rt.settings.resolved_database_url
    if not url.startswith("sqlite"):
        return None
    raw = rt.engine.raw_connection()  # outside any transaction, as a checkpoint needs
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    return Path(url.removeprefix("sqlite:///"))


def test_after_erasure_nothing_holds_the_token_or_a_digest_of_it(world: World) -> None:
    rt, http = world.rt, world.http
    token = world.borrower
    holder = PrivateKey.generate(KeyType.ED25519)
    issued = http.post(
        "/v1/credentials",
        json={
            "type": CRC,
            "subject": token,
            "claims": readiness_claims(token),
            "holder_jwk": public_key_to_jwk(holder.public_key),
            "format": "vc+jwt",
        },
        headers=world.admin,
    )
    assert issued.status_code == 201, issued.text
    credential = issued.json()["credential"]
    offer = http.post(
        "/v1/credential-offers",
        json={"type": CRC, "subject": token, "claims": readiness_claims(token)},
        headers=world.admin,
    )
    assert offer.status_code == 201, offer.text
    offer_id = offer.json()["offer_id"]
    opened = http.post(f"/v1/identities/{token}/requests", json={"kind": "export"})
    assert opened.status_code == 201, opened.text
    # A consent the lender used, and a pending one an agent assists (a code is sent).
    assert world.fetch(world.consent()).status_code == 200
    agent, as_agent = _identity(world, ["field_agent"])
    _delegate(
        world, token, world.as_borrower, agent, as_agent, ["assist:consent"],
        kind="field_agent_assist",
    )  # fmt: skip
    pending = world.consent(approve=False)
    assert http.post(f"/v1/consents/{pending}/assist", headers=as_agent).status_code == 200
    assert notify.read_codes(rt, token)

    needles = traces(token)
    assert scan_tables(rt, {"token": needles["token"]})  # the scan sees the subject
    with transaction(rt.read_sessions) as session:
        row = session.get(IdentityRow, token)
        assert row is not None
        assert row.profile_sealed is not None
        sealed = bytes(row.profile_sealed)
    context = {"subject": token, "purpose": "profile", "record": f"identity:{token}:profile"}

    # Another process serves the offer and has the subject's key in its cache.
    other = Runtime.build(rt.settings, clock=world.clock)
    try:
        with TestClient(create_app(rt.settings, runtime=other), base_url=BASE) as other_http:
            assert other_http.get(f"/v1/credential-offers/{offer_id}").status_code == 200
            with transaction(other.read_sessions) as session:
                assert other.vault.open(session, sealed, **context)

            erased = http.delete(f"/v1/identities/{token}", headers=world.admin)
            assert erased.status_code == 200, erased.text
            assert erased.json()["offers_deleted"] == 1
            assert erased.json()["credentials_unlinked"] == 2

            # At once, not after a TTL.
            assert other_http.get(f"/v1/credential-offers/{offer_id}").status_code == 404
            with transaction(other.read_sessions) as session, pytest.raises(DecryptionFailed):
                other.vault.open(session, sealed, **context)
    finally:
        other.close()

    assert scan_tables(rt, needles) == []
    assert scan_files(rt.settings.data_dir, needles) == []
    database = sqlite_file(rt)
    if database is not None:
        assert scan_files(database.parent, needles) == []
    assert notify.read_codes(rt, token) == []

    # The holder's credential still verifies: status lists are unchanged by an erasure.
    verified = http.post("/v1/credentials/verify", json={"credential": credential})
    assert verified.status_code == 200, verified.text
    assert verified.json()["claims"]["credit_tier"] == "B"
