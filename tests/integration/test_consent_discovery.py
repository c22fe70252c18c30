"""Discovery with lender-bound references, and approval by a DID signature, over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import event, insert
from tests.integration.consent_world import CRC, World

from credit_commons.consent import requests as consent_requests
from credit_commons.consent import retrieval
from credit_commons.consent.decisions import approval_message
from credit_commons.consent.models import DiscoveryProfileRow
from credit_commons.consent.schemas import DiscoveredBorrower
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_encode
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.did_key import encode_did_key
from credit_commons.runtime import Runtime


def test_discovery_without_identifiers(world: World) -> None:
    hidden = world.http.get("/v1/lender/discovery", headers=world.token())
    assert hidden.status_code == 200
    assert hidden.json() == []  # nobody opted in
    opted = world.http.put(
        f"/v1/borrowers/{world.borrower}/discovery",
        json={"enabled": True},
        headers=world.as_borrower,
    )
    assert opted.status_code == 200, opted.text
    assert opted.json()["credit_tier"] == "B"
    found = world.http.get("/v1/lender/discovery", headers=world.token()).json()
    assert len(found) == 1
    entry = found[0]
    assert set(entry) == {"borrower_ref", "credit_tier", "income_bracket", "debt_ratio_bracket"}
    assert world.borrower not in entry["borrower_ref"]
    assert entry["credit_tier"] == "B"
    # The reference works for this lender only.
    body = {
        "template": "loan_underwriting",
        "borrower": entry["borrower_ref"],
        "purpose": "105",
        "consent_expiry": (world.clock.now() + timedelta(days=3)).isoformat(),
        "scopes": [{"type": CRC, "claims": ["/income_bracket"]}],
    }
    mine = world.http.post("/v1/consents", json=body, headers=world.token())
    assert mine.status_code == 201, mine.text
    listed = world.http.get(
        f"/v1/borrowers/{world.borrower}/consents", headers=world.as_borrower
    ).json()
    assert [c["consent_id"] for c in listed] == [mine.json()["consent_id"]]
    theirs = world.http.post("/v1/consents", json=body, headers=world.token(world.other))
    assert theirs.status_code == 404
    # Opting out removes the borrower from discovery.
    world.http.put(
        f"/v1/borrowers/{world.borrower}/discovery",
        json={"enabled": False},
        headers=world.as_borrower,
    )
    assert world.http.get("/v1/lender/discovery", headers=world.token()).json() == []
    narrow = world.token(scope="consent:read")
    assert world.http.get("/v1/lender/discovery", headers=narrow).status_code == 403


def test_approval_by_did_signature(world: World) -> None:
    key = PrivateKey.generate(KeyType.ED25519)
    made = world.http.post(
        "/v1/identities",
        json={
            "roles": ["business"],
            "profile": {"name": "D", "did": encode_did_key(key.public_key)},
        },
    )
    assert made.status_code == 201, made.text
    token = made.json()["identity_token"]
    body = {
        "template": "loan_underwriting",
        "borrower": token,
        "purpose": "105",
        "consent_expiry": (world.clock.now() + timedelta(days=3)).isoformat(),
        "scopes": [{"type": CRC, "claims": []}],
    }
    consent_id = world.http.post("/v1/consents", json=body, headers=world.token()).json()[
        "consent_id"
    ]
    stranger = PrivateKey.generate(KeyType.ED25519)
    forged = b64url_encode(stranger.sign(approval_message(consent_id)))
    refused = world.http.post(
        f"/v1/consents/{consent_id}/signed-approval", json={"signature": forged}
    )
    assert refused.status_code == 404
    other_consent = b64url_encode(key.sign(approval_message("cns_" + "0" * 26)))
    refused = world.http.post(
        f"/v1/consents/{consent_id}/signed-approval", json={"signature": other_consent}
    )
    assert refused.status_code == 404
    signature = b64url_encode(key.sign(approval_message(consent_id)))
    done = world.http.post(
        f"/v1/consents/{consent_id}/signed-approval", json={"signature": signature}
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "ACTIVE"
    assert done.json()["approval"] == "did"


def _opted_in(runtime: Runtime, count: int) -> list[tuple[str, str]]:
    # ``count`` opted-in borrowers, tiers A, B and C in turn, opted in a minute apart in an
    # order unrelated to their tokens: (token, tier) in opt-in order.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {
            "principal_token": f"idt_{(i * 7919) % count:022d}",
            "credit_tier": "ABC"[i % 3],
            "income_bracket": "1L-3L",
            "debt_ratio_bracket": "0-20",
            "opted_in_at": start + timedelta(minutes=i),
        }
        for i in range(count)
    ]
    with transaction(runtime.sessions) as session:
        session.execute(insert(DiscoveryProfileRow), rows)
    return [(r["principal_token"], r["credit_tier"]) for r in rows]


def test_discovery_reads_the_first_opted_in_in_order_on_an_index(runtime: Runtime) -> None:
    # A page of discovery reads the first opted-in borrowers (of a tier, or of all) in
    # opt-in order on (credit_tier, opted_in_at) or (opted_in_at) and stops at its limit:
    # with (credit_tier) alone SQLite read the whole tier and sorted it (bench/web.py).
    made = _opted_in(runtime, 3000)
    lender = SimpleNamespace(client_id="lnd_" + "d" * 22)
    statements: list[tuple[str, object]] = []

    def seen(
        _conn: object, _cursor: object, statement: str, parameters: object, *_: object
    ) -> None:
        if "FROM discovery_profiles" in statement:
            statements.append((statement, parameters))

    event.listen(runtime.engine, "before_cursor_execute", seen)
    try:
        with transaction(runtime.read_sessions) as session:
            tier_b = retrieval.discover(session, runtime, lender, credit_tier="B", limit=5)
            every = retrieval.discover(session, runtime, lender, limit=5)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", seen)

    def tokens(found: list[DiscoveredBorrower]) -> list[str]:
        return [
            consent_requests._resolve_borrower(runtime, lender.client_id, b.borrower_ref)
            for b in found
        ]

    assert [b.credit_tier for b in tier_b] == ["B"] * 5
    assert tokens(tier_b) == [t for t, tier in made if tier == "B"][:5]
    assert tokens(every) == [t for t, _ in made][:5]
    if runtime.engine.dialect.name != "sqlite":
        return
    assert len(statements) == 2
    for (statement, parameters), index in zip(
        statements,
        ("ix_discovery_profiles_tier_opted_in", "ix_discovery_profiles_opted_in"),
        strict=True,
    ):
        with runtime.engine.connect() as connection:
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        plan = " | ".join(str(row[-1]) for row in rows)
        assert f"USING INDEX {index}" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
