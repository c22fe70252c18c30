"""Scores on signed checkpoints on SQLite and PostgreSQL: events → checkpoint → scoring
pass → cached records equal a full reference recompute of the same inputs; an incremental
pass equals a full one; events not yet under a checkpoint are not scored; a new day scores
in full; the capability queue is filled once per subject and reason."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from tests.integration.reputation_world import (
    AT,
    KYC_VCT,
    active_rules,
    checkpoint,
    member_did,
    reference_records,
    register_dev_rules,
    register_member,
    signed_event,
    submit,
)

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.jobs import scores_step
from credit_commons.ledger.worker import LogWorker
from credit_commons.reputation import (
    ScoringError,
    scores_service,
    scores_store,
)
from credit_commons.reputation import service as reputation_service
from credit_commons.reputation.scores_service import (
    ScoringState,
    capability_reason,
    score_checkpoint,
    scoring_members,
)
from credit_commons.reputation.scores_store import CapabilityQueueRow, ScoreRow
from credit_commons.runtime import Runtime


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    rt = replace(runtime, clock=FixedClock(AT))
    register_dev_rules(rt)
    return rt


def _member(
    rt: Runtime,
    n: int,
    *,
    kyc: bool = True,
    credential: int = 0,
    vct: str = "https://example.org/vct/attestation",
    issuer: str | None = None,
) -> None:
    register_member(
        rt,
        n,
        vct=KYC_VCT if kyc else vct,
        issuer=issuer,
        credential_sha256=f"{n:02x}{credential:02x}" * 16,
    )


def _event(rt: Runtime, sender: int, to: int, ctx: str = "shg:savings", **kw: Any) -> str:
    return submit(rt, signed_event(sender, to, at=rt.clock.now(), ctx=ctx, **kw)).cid


def _cached(rt: Runtime) -> dict[tuple[str, str], bytes]:
    with transaction(rt.sessions) as session:
        return {(r.did, r.ctx): r.record for r in session.scalars(select(ScoreRow))}


def _reference(
    rt: Runtime, as_of: date, cids: set[str] | None = None
) -> dict[tuple[str, str], bytes]:
    """A full reference recompute from the stored inputs (``cids``: only those events)."""
    return reference_records(rt, as_of, active_rules(rt).contexts, cids=cids)


def _queue(rt: Runtime) -> set[tuple[str, str, str, str]]:
    with transaction(rt.sessions) as session:
        return {
            (r.subject_did, r.ctx, r.tier, r.reason_hash)
            for r in session.scalars(select(CapabilityQueueRow))
        }


def test_scores_follow_checkpoints_incrementally_and_in_full(rt: Runtime) -> None:
    for n in range(1, 7):
        _member(rt, n)
    _member(rt, 1, kyc=False, credential=1)  # an attestation
    first = {_event(rt, i, j) for i in range(1, 5) for j in range(1, 5) if i != j}
    first.add(_event(rt, 5, 1, ctx="general"))
    state = ScoringState()
    assert score_checkpoint(rt, state) is None  # no checkpoint yet
    checkpoint(rt)
    unsequenced = _event(rt, 5, 2)  # accepted after the checkpoint: not scored yet
    done = score_checkpoint(rt, state)
    assert done is not None
    assert done.full
    assert done.as_of == AT.date()
    assert _cached(rt) == _reference(rt, AT.date(), first)
    assert score_checkpoint(rt, state) is None  # the cursor covers the checkpoint

    # New events under a new checkpoint, same day: incremental, equal to a full recompute.
    second = {unsequenced, _event(rt, 6, 4), _event(rt, 5, 3), _event(rt, 6, 2, type="report")}
    checkpoint(rt)
    done = score_checkpoint(rt, state)
    assert done is not None
    assert not done.full
    assert done.records > 0
    assert _cached(rt) == _reference(rt, AT.date(), first | second)

    # A membership among the new leaves (the same day), with the new member's first vouch:
    # incremental too (the member, then its event), equal to a full recompute.
    _member(rt, 7)
    _event(rt, 7, 3)
    checkpoint(rt)
    done = score_checkpoint(rt, state)
    assert done is not None
    assert not done.full
    assert _cached(rt) == _reference(rt, AT.date())

    # A revocation and a suspension: incremental, only the members and their dependants
    # rewritten; then a reinstatement restores the records.
    unchanged_before = _cached(rt)
    with transaction(rt.sessions) as session:
        rows = {r.did: r for r in scores_store.members(session) if r.kyc}
        assert reputation_service.revoke_membership(session, rt, rows[member_did(6)].id, "revoked")
        assert reputation_service.revoke_membership(
            session, rt, rows[member_did(5)].id, "suspended"
        )
    _event(rt, 1, 2)
    checkpoint(rt)
    done = score_checkpoint(rt, state)
    assert done is not None
    assert not done.full
    assert _cached(rt) == _reference(rt, AT.date())
    assert (
        _cached(rt)[(member_did(6), "shg:savings")]
        != unchanged_before[(member_did(6), "shg:savings")]
    )
    with transaction(rt.sessions) as session:
        assert reputation_service.reinstate_membership(session, rt, rows[member_did(5)].id)
    _event(rt, 2, 1)
    checkpoint(rt)
    done = score_checkpoint(rt, state)
    assert done is not None
    assert not done.full
    assert _cached(rt) == _reference(rt, AT.date())

    # Only events since: incremental again.
    _event(rt, 7, 2)
    checkpoint(rt)
    done = score_checkpoint(rt, state)
    assert done is not None
    assert not done.full
    assert _cached(rt) == _reference(rt, AT.date())

    # A fresh worker (no kept state) recomputes in full, to the same bytes.
    _event(rt, 7, 1)
    checkpoint(rt)
    done = score_checkpoint(rt, ScoringState())
    assert done is not None
    assert done.full
    assert _cached(rt) == _reference(rt, AT.date())

    # The capability queue: one row per qualifying subject and reason, idempotent.
    rules = active_rules(rt)
    names = [t.name for t in rules.aura.tiers]
    qualifying = set(names[names.index(rules.aura.min_tier_for_credential) :])
    with transaction(rt.sessions) as session:
        cached = {(r.did, r.ctx, r.tier) for r in session.scalars(select(ScoreRow))}
    expected = {
        (did, ctx, tier, capability_reason(rules.id, did, ctx, tier))
        for did, ctx, tier in cached
        if tier in qualifying
    }
    assert expected
    assert _queue(rt) == expected
    # aura.domain is shg:*: general is scored but reaches no tier and queues nothing.
    assert {tier for _, ctx, tier in cached if ctx == "general"} == {None}
    assert {ctx for _, ctx, _, _ in _queue(rt)} == {"shg:savings"}
    with transaction(rt.sessions) as session:
        assert len(list(session.scalars(select(CapabilityQueueRow)))) == len(expected)
    assert done.queued == 0  # this full pass found every row queued already

    # The next day: a full recompute as of that day; the queue keeps its rows.
    later = replace(rt, clock=FixedClock(AT + timedelta(days=1)))
    _event(later, 2, 1)
    checkpoint(later)
    done = score_checkpoint(later, state)
    assert done is not None
    assert done.full
    assert done.as_of == date(2026, 12, 8)
    assert _cached(later) == _reference(later, date(2026, 12, 8))
    assert expected <= _queue(later)


def test_a_failing_pass_is_reported_and_does_not_stop_the_steps_after_it(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object) -> None:
        raise ScoringError("the state cannot be scored")

    monkeypatch.setattr(scores_service, "score_checkpoint", refuse)
    ran: list[int] = []
    report = LogWorker(
        rt, steps=[scores_step(), lambda _rt, size: ran.append(size) or {}]
    ).run_once(force_checkpoint=True)
    assert report.extra == {"scores_failed": "reputation.scoring_invalid"}
    assert ran == [report.checkpoint]


def test_attestations_count_distinct_issuer_and_type_not_the_platforms_own(rt: Runtime) -> None:
    rules = active_rules(rt)
    _member(rt, 1)
    _member(rt, 1, kyc=False, credential=1)
    _member(rt, 1, kyc=False, credential=2)  # the same issuer and type again: not another
    _member(rt, 1, kyc=False, credential=3, issuer="https://other.example")  # another issuer
    # The platform's own capability credential registered back: must not feed the score.
    _member(rt, 1, kyc=False, credential=4, vct=rules.aura.output_credential_type)
    checkpoint(rt)
    assert score_checkpoint(rt, ScoringState()) is not None
    with transaction(rt.sessions) as session:
        row = session.get(ScoreRow, (member_did(1), "shg:savings"))
        assert row is not None
        record = json.loads(bytes(row.record))
        (member,) = scoring_members(scores_store.members(session), rules)
    assert member.attestations == 2
    assert record["factors"]["A"] == "2.000000"
    assert _cached(rt) == _reference(rt, AT.date())
