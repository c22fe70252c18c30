"""The scorer's properties: the sparse full and incremental recomputes equal the reference,
the score does not depend on the events' order, more fresh vouches never lower a score (when
Aura's collusion penalty is off — with it on, a new vouch can concentrate the vouchers, by
design), caps clip, the decay halves each half-life, and the arithmetic helpers are exact."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.reputation.scorer_support import (
    AS_OF,
    CTX,
    did,
    event,
    member,
    random_world,
    reference_records,
    scoring_rules,
    sparse_records,
)

from credit_commons.reputation import scorer_sparse
from credit_commons.reputation.scorer import (
    ScoringError,
    ScoringEvent,
    ScoringMember,
    TierRule,
    decay_weight,
    micro_string,
    power_micro,
    score_reference,
    scored_events,
    tier_of,
)
from credit_commons.reputation.scorer_sparse import columns_from_events, score_sparse

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RULES = scoring_rules()
NO_PENALTY = scoring_rules(aura__collusion__multiplier="1")
WIDE = scoring_rules(adjudication__reportWindowDays=1000)


def _bytes(records: dict[str, object]) -> dict[str, bytes]:
    return {d: r.to_jcs() for d, r in records.items()}  # type: ignore[attr-defined]


@SETTINGS
@given(seed=st.integers(0, 2**32), reports=st.integers(0, 80))
def test_sparse_equals_reference(seed: int, reports: int) -> None:
    events, members = random_world(seed, reports=reports)
    excluded = [did("n3")] if seed % 3 == 0 else []
    assert _bytes(sparse_records(events, members, RULES, excluded)) == _bytes(
        reference_records(events, members, RULES, excluded)
    )


@SETTINGS
@given(seed=st.integers(0, 2**32), parts=st.integers(1, 4))
def test_incremental_equals_full(seed: int, parts: int) -> None:
    events, members = random_world(seed, reports=40)
    excluded = [did("n5")] if seed % 2 else []
    rng = random.Random(seed)
    rng.shuffle(events)
    cut = rng.randrange(0, len(events))
    base, new = events[:cut], events[cut:]
    # The senders the state knows: members and the DIDs of the base events it scored.
    scored = scored_events(base, frozenset(excluded), CTX, AS_OF)
    known = {m.did for m in members} | {e.sender for e in scored} | {e.subject for e in scored}
    new = [e for e in new if e.sender in known | set(excluded)]
    state = score_sparse(
        columns_from_events(base, members, excluded, RULES, as_of=AS_OF, ctx=CTX),
        RULES,
        as_of=AS_OF,
        ctx=CTX,
    )
    before = _bytes(state.records())
    changed: set[str] = set()
    for k in range(parts):
        changed.update(state.add_events(new[k::parts]))
    full = reference_records(base + new, members, RULES, excluded)
    after = _bytes(state.records())
    assert after == _bytes(full)
    # Only the k-hop neighbourhood was recomputed: every other record is unchanged.
    assert {d for d in after if before.get(d) != after[d]} <= changed


def _changed_members(
    rng: random.Random, members: list[ScoringMember], newcomers: list[str]
) -> list[ScoringMember]:
    """The community's memberships after some changes: revoked or suspended (ended today or
    earlier), reinstated (a suspension lifted), more or fewer attestations, a KYC flag
    gained, and new members (some of them DIDs events already name)."""
    out = []
    for m in members:
        roll = rng.random()
        changed = m
        if roll < 0.15:
            changed = replace(m, revoked_on=AS_OF - timedelta(days=rng.randrange(0, 3)))
        elif roll < 0.25 and m.revoked_on is not None:
            changed = replace(m, revoked_on=None)  # reinstated
        elif roll < 0.35:
            changed = replace(m, attestations=rng.randrange(0, 8))
        elif roll < 0.4:
            changed = replace(m, kyc=not m.kyc)
        out.append(changed)
    for name in newcomers:
        out.append(
            ScoringMember(
                did=did(name),
                since=AS_OF - timedelta(days=rng.randrange(0, 400)),
                kyc=rng.random() < 0.7,
                attestations=rng.randrange(0, 3),
            )
        )
    return out


@SETTINGS
@given(seed=st.integers(0, 2**32), parts=st.integers(1, 3))
def test_incremental_equals_full_with_membership_changes(seed: int, parts: int) -> None:
    """Full recompute = incremental with membership changes included: memberships change
    (``update_members``) between batches of new events (``add_events``), and the state's
    records equal a full reference recompute of the final inputs, byte for byte; only the
    DIDs reported changed differ from before.  Reports count over the whole two years
    (a wide window), so that a reporter's changed KYC flag often moves a subject's R."""
    events, members = random_world(seed, reports=60)
    excluded = [did("n4")] if seed % 2 else []
    rng = random.Random(seed ^ 0x5EED)
    rng.shuffle(events)
    cut = rng.randrange(0, len(events))
    base, new = events[:cut], events[cut:]
    # Newcomers: a DID no event names and, when there is one, a DID only events name.
    member_dids = {m.did for m in members}
    named = sorted({e.subject for e in base} - member_dids)
    newcomers = ["fresh1", *[n for n in (f"n{i}" for i in range(30)) if did(n) in named][:2]]
    state = score_sparse(
        columns_from_events(base, members, excluded, WIDE, as_of=AS_OF, ctx=CTX),
        WIDE,
        as_of=AS_OF,
        ctx=CTX,
    )
    before = _bytes(state.records())
    current = list(members)
    changed: set[str] = set()
    applied: list[ScoringEvent] = []
    for k in range(parts):
        current = _changed_members(rng, current, newcomers if k == 0 else [])
        changed.update(state.update_members(current))
        known = set(state.dids)
        batch = [e for e in new[k::parts] if e.sender in known or e.sender in excluded]
        changed.update(state.add_events(batch))
        applied += batch
    full = reference_records(base + applied, current, WIDE, excluded)
    after = _bytes(state.records())
    assert after == _bytes(full)
    assert {d for d in after if before.get(d) != after[d]} <= changed
    assert state.update_members(current) == []  # nothing changed since: nothing recomputed


def test_update_members_recomputes_the_member_and_its_dependants() -> None:
    """B vouches for A; revoking B's KYC lowers B and, through the vouch, A; C (unrelated)
    is not recomputed.  Reinstating restores both records byte for byte."""
    members = [member("A", days=365), member("B", days=365), member("C", days=365)]
    events = [event("vouch", did("B"), did("A"), 0)]
    state = score_sparse(
        columns_from_events(events, members, [], RULES, as_of=AS_OF, ctx=CTX),
        RULES,
        as_of=AS_OF,
        ctx=CTX,
    )
    before = _bytes(state.records())
    revoked = replace(members[1], revoked_on=AS_OF)
    assert sorted(state.update_members([revoked])) == sorted([did("A"), did("B")])
    assert _bytes(state.records()) == _bytes(
        reference_records(events, [members[0], revoked, members[2]], RULES)
    )
    assert _bytes(state.records())[did("A")] != before[did("A")]
    assert state.update_members([members[1]]) != []
    assert _bytes(state.records()) == before


def test_a_reporters_lost_kyc_moves_the_reported_subjects_r() -> None:
    """B and C (KYC) report A: the quorum of 2 is met and R counts.  B's revocation drops
    the quorum: A's R is 0 again although A is no out-neighbour of B."""
    members = [member("A", days=365), member("B", days=365), member("C", days=365)]
    events = [event("report", did("B"), did("A"), 0), event("report", did("C"), did("A"), 0)]
    state = score_sparse(
        columns_from_events(events, members, [], RULES, as_of=AS_OF, ctx=CTX),
        RULES,
        as_of=AS_OF,
        ctx=CTX,
    )
    assert state.record(did("A")).r > 0
    revoked = replace(members[1], revoked_on=AS_OF)
    assert did("A") in state.update_members([revoked])
    assert state.record(did("A")).r == 0
    assert _bytes(state.records()) == _bytes(
        reference_records(events, [members[0], revoked, members[2]], RULES)
    )


@SETTINGS
@given(seed=st.integers(0, 2**32))
def test_any_order_same_bytes(seed: int) -> None:
    events, members = random_world(seed, reports=40)
    shuffled = list(events)
    random.Random(seed + 1).shuffle(shuffled)
    members_shuffled = list(reversed(members))
    assert _bytes(reference_records(events, members, RULES)) == _bytes(
        reference_records(shuffled, members_shuffled, RULES)
    )
    assert _bytes(sparse_records(events, members, RULES)) == _bytes(
        sparse_records(shuffled, members_shuffled, RULES)
    )


@SETTINGS
@given(seed=st.integers(0, 2**32), extra=st.integers(1, 6))
def test_fresh_vouches_never_lower_a_score(seed: int, extra: int) -> None:
    """With the collusion multiplier at 1, adding vouches issued on the scoring date (the
    largest weight) raises no average and no count above its cap less, so every c_j·q_j
    and hence every score and tier is at least what it was."""
    events, members = random_world(seed, reports=10)
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(30)]
    more = list(events)
    for x in range(extra):
        a, b = rng.sample(names, 2)
        more.append(event("vouch", did(a), did(b), 0, salt=f"extra{x}"))
    before = reference_records(events, members, NO_PENALTY)
    after = reference_records(more, members, NO_PENALTY)
    order = [t.name for t in NO_PENALTY.aura.tiers]
    for d, record in before.items():
        assert after[d].score >= record.score
        assert after[d].diversity >= record.diversity
        if record.tier is not None:
            assert after[d].tier is not None
            assert order.index(after[d].tier) >= order.index(record.tier)


@SETTINGS
@given(boost=st.integers(1, 50))
def test_voucher_score_clipped_at_cap(boost: int) -> None:
    """A voucher already at caps.voucherScore lends no more when its own score rises."""
    rules = scoring_rules(caps__voucherScore="5")  # a KYC voucher starts at α = 10 > 5
    members = [member("A"), member("B", days=365)]
    raised = [member("A"), member("B", days=365, attestations=boost)]
    events = [event("vouch", did("B"), did("A"), 0)]
    plain = reference_records(events, members, rules)
    higher = reference_records(events, raised, rules)
    assert higher[did("B")].score > plain[did("B")].score
    assert higher[did("A")].to_jcs() == plain[did("A")].to_jcs()


@SETTINGS
@given(attestations=st.integers(5, 40), repeats=st.integers(3, 9))
def test_counts_clipped_at_caps(attestations: int, repeats: int) -> None:
    """Attestations above caps.attestations and same-day vouches from one voucher above
    aura.perCounterpartyCap change nothing but the list of CIDs."""
    at_cap = [member("A", attestations=5), member("B", days=365)]
    over = [member("A", attestations=attestations), member("B", days=365)]
    three = [event("vouch", did("B"), did("A"), 0, salt=str(n)) for n in range(3)]
    more = [event("vouch", did("B"), did("A"), 0, salt=str(n)) for n in range(repeats)]
    a = reference_records(three, at_cap, RULES)[did("A")]
    b = reference_records(more, over, RULES)[did("A")]
    assert (a.score, a.k, a.a, a.v, a.tier) == (b.score, b.k, b.a, b.v, b.tier)
    assert len(b.events) == repeats


@settings(max_examples=200, deadline=None)
@given(days=st.integers(0, 4000), half_life=st.integers(1, 800))
def test_decay_halves_every_half_life(days: int, half_life: int) -> None:
    # floor(x / 2) == floor(floor(x) / 2) for x ≥ 0: the floored table halves exactly.
    assert decay_weight(days + half_life, half_life) == decay_weight(days, half_life) // 2
    assert decay_weight(0, half_life) == 1_000_000


@SETTINGS
@given(days=st.integers(0, 1000))
def test_a_vouch_a_half_life_older_weighs_half(days: int) -> None:
    members = [member("A"), member("B", days=365)]
    newer = reference_records([event("vouch", did("B"), did("A"), days)], members, NO_PENALTY)
    older = reference_records([event("vouch", did("B"), did("A"), days + 180)], members, NO_PENALTY)
    # V² ≈ c·q: with q halved, V² halves, up to the floors: q's (c/10^6 units of 10^6),
    # the floor of c·q to micro (2 units) and the floor square roots (2·V each).
    c = newer[did("B")].score
    v_new, v_old = newer[did("A")].v, older[did("A")].v
    assert abs(v_old * v_old * 2 - v_new * v_new) <= c + 2_000_000 + 4 * v_new + 2


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 50), exponent=st.integers(0, 1_000_000))
def test_power_table_is_the_floor(n: int, exponent: int) -> None:
    y = power_micro(n, exponent)
    # floor(10^6 · n^e): y ≤ 10^6 · n^e < y + 1, checked in exact rationals with ≥ 1 digit slack
    # only where the exact integer test (den ≤ 4096) was not used.
    value = 1_000_000 * n ** (exponent / 1_000_000)
    assert y <= value * (1 + 1e-12)
    assert value < (y + 1) * (1 + 1e-12)
    if exponent in (0, 500_000, 1_000_000):
        expected = {0: 1_000_000, 500_000: math.isqrt(n * 10**12), 1_000_000: n * 1_000_000}
        assert y == expected[exponent]


def test_micro_strings() -> None:
    assert micro_string(0) == "0.000000"
    assert micro_string(1_500_000) == "1.500000"
    assert micro_string(-1) == "-0.000001"
    assert micro_string(-21_095_888) == "-21.095888"


def test_tier_and_clamp() -> None:
    tiers = (
        TierRule("bronze", 0),
        TierRule("silver", 25_000_000, 2),
        TierRule("gold", 60_000_000, 5),
    )
    assert tier_of(-1, 9, tiers) is None
    assert tier_of(0, 0, tiers) == "bronze"
    assert tier_of(70_000_000, 5, tiers) == "gold"
    assert tier_of(70_000_000, 4, tiers) == "silver"
    assert tier_of(70_000_000, 1, tiers) == "bronze"
    assert tier_of(59_999_999, 9, tiers) == "silver"


def test_tiers_only_inside_the_aura_domain() -> None:
    # aura.domain is shg:*: general is scored (the same score as under shg:savings) but
    # reaches no tier, in the reference and in the sparse recompute alike.
    members = [member("A", days=365), member("B", days=365), member("C", days=365)]
    vouches = [("B", "A"), ("C", "A"), ("A", "B"), ("C", "B")]
    by_ctx = {}
    for ctx in (CTX, "general"):
        events = [event("vouch", did(x), did(y), 0, ctx=ctx) for x, y in vouches]
        reference = score_reference(events, members, (), RULES, as_of=AS_OF, ctx=ctx)
        cols = columns_from_events(events, members, (), RULES, as_of=AS_OF, ctx=ctx)
        sparse = score_sparse(cols, RULES, as_of=AS_OF, ctx=ctx).records()
        assert _bytes(sparse) == _bytes(reference)
        by_ctx[ctx] = reference[did("A")]
    assert by_ctx[CTX].tier is not None
    assert by_ctx["general"].tier is None
    assert by_ctx["general"].score == by_ctx[CTX].score


def test_excluded_and_future_events_ignored() -> None:
    members = [member("A"), member("B", days=365), member("X", days=365)]
    events = [
        event("vouch", did("B"), did("A"), 0),
        event("vouch", did("X"), did("A"), 0, salt="x"),
        event("vouch", did("B"), did("A"), -1, salt="tomorrow"),
        event("vouch", did("B"), did("A"), 0, ctx="general", salt="other-ctx"),
    ]
    records = reference_records(events, members, RULES, excluded=[did("X")])
    assert did("X") not in records
    only_b = reference_records(events[:1], members[:2], RULES)
    assert records[did("A")].to_jcs() == only_b[did("A")].to_jcs()
    assert sparse_records(events, members, RULES, excluded=[did("X")]) == records


def test_revoked_membership_counts_nothing() -> None:
    revoked = ScoringMember(
        did("A"), AS_OF - timedelta(days=400), kyc=True, revoked_on=AS_OF, attestations=3
    )
    record = reference_records([], [revoked], RULES)[did("A")]
    assert (record.k, record.a, record.t, record.score) == (0, 0, 0, 0)


def test_incremental_refuses_what_it_cannot_fold_in() -> None:
    members = [member("A"), member("B", days=365), member("X")]
    state = score_sparse(
        columns_from_events([], members, [did("X")], RULES, as_of=AS_OF, ctx=CTX),
        RULES,
        as_of=AS_OF,
        ctx=CTX,
    )
    before = state.records()
    with pytest.raises(ScoringError):
        state.add_events(
            [event("vouch", did("B"), did("A"), 0), event("vouch", did("stranger"), did("A"), 0)]
        )
    assert state.records() == before  # refused before anything changed
    # What the full recompute ignores, the incremental update ignores too.
    ignored = [
        event("vouch", did("B"), did("A"), -1),
        event("vouch", did("B"), did("A"), 0, ctx="general"),
        event("vouch", did("B"), did("B"), 0),
        event("vouch", did("B"), did("X"), 0),
        event("vouch", did("X"), did("A"), 0),
    ]
    assert state.add_events(ignored) == []
    assert state.records() == before
    assert state.add_events([event("vouch", did("B"), did("new"), 0)]) == [did("new")]


def test_large_numbers_take_the_python_path() -> None:
    """A rule set whose weights could wrap int64 is scored with Python integers, and still
    equals the reference."""
    rules = scoring_rules(weights__gamma="999999999999", caps__voucherScore="999999999999")
    events, members = random_world(7, reports=30)
    state = score_sparse(
        columns_from_events(events, members, [], rules, as_of=AS_OF, ctx=CTX),
        rules,
        as_of=AS_OF,
        ctx=CTX,
    )
    assert state.scores.dtype == object
    assert _bytes(state.records()) == _bytes(reference_records(events, members, rules))


def test_unknown_event_type_refused() -> None:
    with pytest.raises(ScoringError):
        ScoringEvent(
            type="like",
            sender="a",
            subject="b",
            ctx=CTX,
            issued_at=event("vouch", "a", "b", 0).issued_at,
            cid="c",
        )  # type: ignore[arg-type]


def test_reference_signature() -> None:
    records = score_reference([], [member("A")], [], RULES, as_of=AS_OF, ctx=CTX)
    assert records[did("A")].as_json()["ruleSet"] == RULES.ref()


def test_int64_guards_fall_back_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the int64 guard lowered, q_j and the collusion test take their Python-integer
    branches (which only millions of vouches on one subject reach for real) and still
    equal the reference."""
    monkeypatch.setattr(scorer_sparse, "SAFE", 10**6)
    events, members = random_world(11, reports=30)
    assert _bytes(sparse_records(events, members, RULES)) == _bytes(
        reference_records(events, members, RULES)
    )
