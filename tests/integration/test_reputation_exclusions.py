"""Excluded DIDs on SQLite and PostgreSQL (issue 19 "tombstoned or restricted subjects
skipped"): a DID's own tombstone over HTTP (``POST /v1/reputation/members/tombstone``, a
``reputation-tombstone+jwt`` signed by its key) and the erasure of the identity whose profile
names the DID exclude it: a ``reputation.excluded`` spine event, no record at the next
checkpoint, its events counting for nobody (the others' records equal a reference recompute
without it), events from and to it refused, and the bundles of the others verifying offline
without its events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.integration.reputation_world import (
    AT,
    CTX,
    KYC_VCT,
    active_rules,
    checkpoint,
    fetch_bundle,
    member_did,
    member_key,
    reference_records,
    register_dev_rules,
    register_member,
    signed_event,
)
from tests.integration.test_erasure_backups import backup, restored

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.events import EventRow
from credit_commons.formats.jws import sign_compact
from credit_commons.identity.auth import issue_admin_token
from credit_commons.privacy.restore import restore_from
from credit_commons.reputation import (
    MemberCredentialRefused,
)
from credit_commons.reputation import service as reputation_service
from credit_commons.reputation.capability import sign_tombstone
from credit_commons.reputation.models import ReputationExclusionRow
from credit_commons.reputation.scores_bundle import did_sha256, verify_bundle
from credit_commons.reputation.scores_service import (
    ScoringState,
    score_checkpoint,
)
from credit_commons.reputation.scores_store import ScoreRow
from credit_commons.runtime import Runtime


@pytest.fixture(autouse=True)
def clock(runtime: Runtime) -> FixedClock:
    fixed = FixedClock(AT)
    runtime.clock = fixed
    register_dev_rules(runtime)
    return fixed


def _score(rt: Runtime, state: ScoringState) -> None:
    checkpoint(rt)
    assert score_checkpoint(rt, state) is not None


def _records(rt: Runtime) -> dict[str, bytes]:
    with transaction(rt.sessions) as session:
        rows = session.scalars(select(ScoreRow).where(ScoreRow.ctx == CTX))
        return {r.did: bytes(r.record) for r in rows}


def _reference(rt: Runtime, excluded: set[str]) -> dict[str, bytes]:
    records = reference_records(rt, AT.date(), [CTX], excluded=excluded)
    return {did: record for (did, _), record in records.items()}


def _spine(rt: Runtime, kind: str) -> list[EventRow]:
    with transaction(rt.sessions) as session:
        rows = list(session.scalars(select(EventRow).where(EventRow.type == kind)))
        session.expunge_all()
        return rows


def test_a_tombstone_excludes_the_did_from_scoring(runtime: Runtime, client: TestClient) -> None:
    rt = runtime
    for n in range(1, 5):
        register_member(rt, n)
    # A chain 3 → 2 → 1 and 4 → 1, 1 → 3: 3's score feeds 2's, 2's feeds 1's.
    for sender, to in ((3, 2), (2, 1), (4, 1), (1, 3)):
        assert client.post("/v1/events", json=signed_event(sender, to)).status_code == 201
    state = ScoringState()
    _score(rt, state)
    before = _records(rt)
    assert before == _reference(rt, set())
    assert member_did(3) in before

    audience = rt.settings.public_url.rstrip("/")
    iat = int(AT.timestamp())
    refused = [
        sign_tombstone(member_key(4), did=member_did(3), audience=audience, iat=iat),  # another key
        sign_tombstone(
            member_key(3), did=member_did(3), audience="https://elsewhere.example", iat=iat
        ),
        sign_tombstone(member_key(3), did=member_did(3), audience=audience, iat=iat - 61),  # stale
        sign_compact(  # a score request's proof is not a tombstone
            {"typ": "score-request+jwt"},
            {"sub": member_did(3), "aud": audience, "iat": iat, "ctx": CTX},
            member_key(3),
        ),
    ]
    for proof in refused:
        answer = client.post(
            "/v1/reputation/members/tombstone", json={"did": member_did(3), "proof": proof}
        )
        assert answer.status_code == 401, answer.text
        assert answer.json()["code"] == "reputation.subject_proof_invalid"
    assert _spine(rt, "reputation.excluded") == []
    bad = client.post("/v1/reputation/members/tombstone", json={"did": "did:key:nope", "proof": ""})
    assert bad.status_code == 422

    proof = sign_tombstone(member_key(3), did=member_did(3), audience=audience, iat=iat)
    left = client.post(
        "/v1/reputation/members/tombstone", json={"did": member_did(3), "proof": proof}
    )
    assert left.status_code == 201, left.text
    assert left.json()["did"] == member_did(3)
    assert left.json()["reason"] == "tombstone"
    again = client.post(
        "/v1/reputation/members/tombstone", json={"did": member_did(3), "proof": proof}
    )
    assert again.status_code == 201
    assert again.json()["event_id"] == left.json()["event_id"]  # idempotent
    (event,) = _spine(rt, "reputation.excluded")
    assert json.loads(event.details) == {
        "reason": "tombstone",
        "did_sha256": did_sha256(member_did(3)),
    }
    assert member_did(3) not in event.details

    # Nothing more from it or to it; it cannot register again.
    sent = client.post("/v1/events", json=signed_event(3, 4))
    assert sent.status_code == 403
    assert sent.json()["code"] == "reputation.sender_locked"
    received = client.post("/v1/events", json=signed_event(4, 3))
    assert received.status_code == 409
    assert received.json()["code"] == "reputation.recipient_excluded"
    with pytest.raises(MemberCredentialRefused), transaction(rt.sessions) as session:
        reputation_service.register_member(
            session,
            rt,
            did=member_did(3),
            vct=KYC_VCT,
            issuer=rt.settings.public_url,
            credential_sha256="ab" * 32,
            status_ref=None,
            rules=active_rules(rt),
        )

    # The next checkpoint: recomputed in full without 3.
    _score(rt, state)
    after = _records(rt)
    assert member_did(3) not in after
    assert after == _reference(rt, {member_did(3)})
    assert after[member_did(2)] != before[member_did(2)]  # 3's vouch no longer counts
    assert after[member_did(1)] != before[member_did(1)]  # nor, through 2, for 1
    assert after[member_did(4)] == before[member_did(4)]  # 4 received nothing

    # 1's bundle leaves 3's events out and verifies offline; 3 has no score.
    served = fetch_bundle(client, 1)
    assert served.status_code == 200, served.text
    bundle = served.json()
    verified = verify_bundle(bundle, trust_bundle_keys=True)
    assert verified.record["did"] == member_did(1)
    assert member_did(3) not in json.dumps([m["did"] for m in bundle["members"]])
    gone = client.get("/v1/scores", params={"did": member_did(3), "ctx": CTX})
    assert gone.status_code == 404


def test_an_erasure_excludes_the_did_its_profile_names(
    runtime: Runtime, client: TestClient
) -> None:
    rt = runtime
    with transaction(rt.sessions) as session:
        admin, _ = issue_admin_token(session, rt, "desk")
    made = client.post(
        "/v1/identities",
        json={"roles": ["business"], "profile": {"name": "Asha", "did": member_did(7)}},
    )
    assert made.status_code == 201, made.text
    other = client.post(
        "/v1/identities",
        json={"roles": ["business"], "profile": {"name": "Bela", "did": member_did(8)}},
    )
    assert other.status_code == 201, other.text
    register_member(rt, 7)  # 7 took part; 8 never did
    headers = {"Authorization": f"Bearer {admin}"}
    for made_ in (made, other):
        token = made_.json()["identity_token"]
        assert client.delete(f"/v1/identities/{token}", headers=headers).status_code == 200
    with transaction(rt.sessions) as session:
        row = session.get(ReputationExclusionRow, member_did(7))
        assert row is not None
        assert row.reason == "erased"
        assert session.get(ReputationExclusionRow, member_did(8)) is None  # nothing about 8
    (event,) = _spine(rt, "reputation.excluded")
    assert json.loads(event.details)["reason"] == "erased"


def test_a_restored_backup_keeps_the_exclusion_of_an_erasure_made_after_it(
    runtime: Runtime, settings: Settings, client: TestClient, tmp_path: Path
) -> None:
    # The backup predates the erasure: restoring it deletes the subject's keys (its source
    # no longer has them) before erasing it again, so the erasure cannot read the DID from
    # the profile; the exclusion comes from the source instead.
    rt = runtime
    with transaction(rt.sessions) as session:
        admin, _ = issue_admin_token(session, rt, "desk")
    made = client.post(
        "/v1/identities",
        json={"roles": ["business"], "profile": {"name": "Asha", "did": member_did(7)}},
    )
    assert made.status_code == 201, made.text
    register_member(rt, 7)
    saved = backup(rt, settings, tmp_path / "backup")
    token = made.json()["identity_token"]
    headers = {"Authorization": f"Bearer {admin}"}
    assert client.delete(f"/v1/identities/{token}", headers=headers).status_code == 200
    with restored(saved, settings) as old:
        with transaction(old.read_sessions) as session:
            assert session.get(ReputationExclusionRow, member_did(7)) is None  # not yet
        counts = restore_from(old, rt.sessions)
        assert counts.erasures_applied == 1
        assert counts.exclusions_copied == 1
        with transaction(old.read_sessions) as session:
            row = session.get(ReputationExclusionRow, member_did(7))
            assert row is not None
            assert row.reason == "erased"
        assert restore_from(old, rt.sessions).exclusions_copied == 0  # idempotent
