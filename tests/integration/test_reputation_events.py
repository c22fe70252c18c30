"""Reputation events through the service on SQLite and PostgreSQL: the KYC lock, budgets
(exactly N, N+1 refused, the next epoch from zero), replay, the rule set's contexts and
window, and the spine event written in the same transaction with a pending receipt."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.integration.reputation_world import (
    AT,
    KYC_VCT,
    member_did,
    member_key,
    register_member,
    signed_event,
    submit,
)

from credit_commons import reputation
from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.encoding import canonical_json
from credit_commons.events import EventRow
from credit_commons.ledger import pending_receipt
from credit_commons.reputation import (
    BudgetExhausted,
    ContextNotAllowed,
    EventAccepted,
    EventInvalid,
    EventOutsideWindow,
    EventReplayed,
    EventSignatureInvalid,
    RuleSet,
    SenderLocked,
    UnknownBlob,
    parse_rule_set,
    sign_event,
)
from credit_commons.reputation import service as reputation_service
from credit_commons.runtime import Runtime

ISSUER = "https://issuer.example"


def _rules(**epoch: int) -> RuleSet:
    """The contract's example rule set, with this test's KYC type and issuer."""
    document = json.loads((Path(reputation.__file__).parent / "dev_rules.json").read_text())
    document["kyc"] = {"credentialTypes": [KYC_VCT], "trustedIssuers": [ISSUER]}
    document["epoch"].update(epoch)
    return parse_rule_set(document)


RULES = _rules()


@pytest.fixture(autouse=True)
def clock(runtime: Runtime) -> FixedClock:
    fixed = FixedClock(AT)
    runtime.clock = fixed
    return fixed


def _member(
    rt: Runtime, n: int, *, vct: str = KYC_VCT, issuer: str = ISSUER, credential: int = 0
) -> None:
    register_member(
        rt,
        n,
        rules=RULES,
        vct=vct,
        issuer=issuer,
        credential_sha256=f"{n:02x}{credential:02x}" * 16,
        status_ref=f"https://issuer.example/status-lists/1#{n}",
    )


def _submit(rt: Runtime, doc: dict[str, Any], rules: RuleSet = RULES) -> EventAccepted:
    return submit(rt, doc, rules)


def _count(rt: Runtime, kind: str) -> int:
    with transaction(rt.sessions) as session:
        return int(session.scalar(select(func.count()).where(EventRow.type == kind)) or 0)


def test_accepted_event_is_stored_with_its_spine_event_and_receipt(runtime: Runtime) -> None:
    _member(runtime, 1)
    doc = signed_event(1, 2)
    accepted = _submit(runtime, doc)
    assert accepted.cid.startswith("bafkrei")
    assert accepted.leaf_index is None
    assert accepted.receipt.event["type"] == "reputation.event"
    assert accepted.receipt.event["id"] == accepted.event_id
    details = accepted.receipt.event["details"]
    assert details == {
        "cid": accepted.cid,
        "kind": "vouch",
        "ctx": "shg:savings",
        "epoch": "2026-12",
        # The DIDs' plain SHA-256: an offline verifier binds them to this event.
        "from_sha256": hashlib.sha256(member_did(1).encode()).hexdigest(),
        "to_sha256": hashlib.sha256(member_did(2).encode()).hexdigest(),
    }
    # No DID in the spine: actor and subject are keyed pseudonyms, the object a keyed digest.
    text = str(accepted.receipt.model_dump())
    assert member_did(1) not in text
    assert member_did(2) not in text
    assert accepted.receipt.event["actor"].startswith("p1:")
    assert accepted.receipt.event["subject"].startswith("p1:")
    assert accepted.receipt.event["object"] == runtime.objects.digest(
        "reputation_event", accepted.cid
    )
    with transaction(runtime.sessions) as session:
        body = reputation_service.blob(session, accepted.cid)
    assert body == canonical_json(doc)
    assert _count(runtime, "reputation.event") == 1
    # The receipt built from the event in hand is the one read back from the spine.
    with transaction(runtime.sessions) as session:
        assert pending_receipt(session, runtime, accepted.event_id) == accepted.receipt
    assert _count(runtime, "reputation.member") == 1


def test_a_refused_event_writes_nothing(runtime: Runtime) -> None:
    _member(runtime, 1)
    with pytest.raises(ContextNotAllowed):
        _submit(runtime, signed_event(1, 2, ctx="unknown"))
    with pytest.raises(EventSignatureInvalid):
        _submit(runtime, {**signed_event(1, 2), "ctx": "general"})
    assert _count(runtime, "reputation.event") == 0


def test_sender_locked_until_kyc_member(runtime: Runtime) -> None:
    doc = signed_event(1, 2)
    with pytest.raises(SenderLocked):
        _submit(runtime, doc)
    # An attestation (not a KYC type, or not a trusted issuer) does not unlock.
    _member(runtime, 1, vct="https://credit-commons.dev/vct/other/v1", credential=1)
    _member(runtime, 1, issuer="https://untrusted.example", credential=2)
    with pytest.raises(SenderLocked):
        _submit(runtime, doc)
    _member(runtime, 1)
    _submit(runtime, doc)  # the same event, once unlocked


def test_the_rule_set_in_effect_decides_which_memberships_unlock(runtime: Runtime) -> None:
    # Registered under RULES: one KYC membership (kyc/v1 of ISSUER) and one attestation.
    other = "https://credit-commons.dev/vct/other/v1"
    _member(runtime, 1)
    _member(runtime, 3, vct=other, credential=1)
    later = json.loads(RULES.canonical)
    # A later rule set trusts only another issuer, and takes the attestation's type as KYC.
    later["kyc"] = {"credentialTypes": [other], "trustedIssuers": [ISSUER]}
    later["version"] = RULES.version + 1
    dropped = parse_rule_set(later)
    with pytest.raises(SenderLocked):
        _submit(runtime, signed_event(1, 2), dropped)
    _submit(runtime, signed_event(3, 2), dropped)
    with pytest.raises(SenderLocked):
        _submit(runtime, signed_event(3, 2), RULES)
    _submit(runtime, signed_event(1, 2), RULES)


def test_budget_exactly_n_then_refused_then_next_epoch(runtime: Runtime, clock: FixedClock) -> None:
    _member(runtime, 1)
    for to in range(2, 7):  # five vouches
        _submit(runtime, signed_event(1, to))
    with pytest.raises(BudgetExhausted):
        _submit(runtime, signed_event(1, 7))
    # Other contexts and reports have their own budgets.
    _submit(runtime, signed_event(1, 7, ctx="general"))
    for to in range(2, 5):
        _submit(runtime, signed_event(1, to, type="report"))
    with pytest.raises(BudgetExhausted):
        _submit(runtime, signed_event(1, 5, type="report"))
    # A new epoch starts from zero (non-rollover).
    clock.advance(timedelta(days=25))
    january = datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC)
    _submit(runtime, signed_event(1, 7, epoch="2027-01", issued_at=january))
    assert _count(runtime, "reputation.event") == 5 + 1 + 3 + 1


def test_budget_holds_under_concurrent_submissions(runtime: Runtime) -> None:
    _member(runtime, 1)
    docs = [signed_event(1, to) for to in range(2, 12)]  # ten vouches for a budget of five
    outcomes: list[str] = []

    def submit(doc: dict[str, Any]) -> None:
        try:
            _submit(runtime, doc)
            outcomes.append("ok")
        except BudgetExhausted:
            outcomes.append("budget")

    threads = [threading.Thread(target=submit, args=(doc,)) for doc in docs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["budget"] * 5 + ["ok"] * 5


def test_replay_is_refused_forever(runtime: Runtime, clock: FixedClock) -> None:
    _member(runtime, 1)
    doc = signed_event(1, 2)
    _submit(runtime, doc)
    with pytest.raises(EventReplayed):
        _submit(runtime, doc)
    # The same nonce in a detached signature (another CID) is the same replay.
    again = sign_event(
        member_key(1),
        type="vouch",
        to=member_did(2),
        ctx="shg:savings",
        epoch="2026-12",
        nonce=doc["nonce"],
        issued_at=AT - timedelta(minutes=1),
        detached=True,
    )
    with pytest.raises(EventReplayed):
        _submit(runtime, again.document())
    # And in another epoch, long after.
    clock.advance(timedelta(days=60))
    later = datetime(2027, 2, 5, 10, 0, tzinfo=UTC)
    with pytest.raises(EventReplayed):
        _submit(runtime, signed_event(1, 3, epoch="2027-02", issued_at=later, nonce=doc["nonce"]))


def test_epoch_window_uses_the_rule_set(runtime: Runtime) -> None:
    _member(runtime, 1)
    with pytest.raises(EventOutsideWindow):
        _submit(runtime, signed_event(1, 2, issued_at=AT + timedelta(seconds=301)))
    _submit(runtime, signed_event(1, 2, issued_at=AT + timedelta(seconds=300)))
    strict = _rules(maxEventAgeSeconds=30)
    with pytest.raises(EventOutsideWindow):
        _submit(runtime, signed_event(1, 3, issued_at=AT - timedelta(seconds=31)), strict)
    _submit(runtime, signed_event(1, 3, issued_at=AT - timedelta(seconds=30)), strict)


def test_unknown_keys_size_and_self_vouch_are_refused(runtime: Runtime) -> None:
    _member(runtime, 1)
    with pytest.raises(EventInvalid):
        _submit(runtime, {**signed_event(1, 2), "weight": 3})
    with pytest.raises(EventInvalid):
        _submit(runtime, {**signed_event(1, 2), "to": member_did(1)})
    assert _count(runtime, "reputation.event") == 0


def test_membership_is_idempotent_per_credential(runtime: Runtime) -> None:
    _member(runtime, 1)
    _member(runtime, 1)
    assert _count(runtime, "reputation.member") == 1
    with transaction(runtime.sessions) as session:
        assert reputation_service.is_member(session, runtime, member_did(1))
        assert not reputation_service.is_member(session, runtime, member_did(2))


def test_unknown_blob_and_non_cid_answer_the_same(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        for cid in ("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "x", "Qm1"):
            with pytest.raises(UnknownBlob) as caught:
                reputation_service.blob(session, cid)
            assert caught.value.detail == "no such blob"
