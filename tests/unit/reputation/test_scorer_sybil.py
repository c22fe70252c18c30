"""Sybil simulations (issue 19): rings of fresh DIDs vouching for each other and a colluding
pair gain no tier above the bound the rules imply, stated and computed here independently of
the scorer (both scorers are checked against it)."""

from __future__ import annotations

import math

from tests.unit.reputation.scorer_support import (
    RULES_ORDER,
    did,
    event,
    member,
    reference_records,
    scoring_rules,
    sparse_records,
)

from credit_commons.reputation import MICRO

RULES = scoring_rules()
RING = 100
BUDGET = RULES.budgets.vouches_per_epoch  # 5 vouches per sender, context and epoch


def _ring(epochs: int) -> list:  # type: ignore[type-arg]
    """Each ring member vouches for the next ``BUDGET`` members once per epoch (a new set of
    subjects each epoch), within the per-epoch budget; all vouches are fresh (weight 1)."""
    events = []
    for i in range(RING):
        for e in range(epochs):
            for step in range(1, BUDGET + 1):
                j = (i + e * BUDGET + step) % RING
                events.append(event("vouch", did(f"r{i}"), did(f"r{j}"), 0, salt=f"{e}"))
    return events


def ring_bound(distinct_vouchers: int) -> int:
    """The highest score (micro) a ring member can reach with no attestations, no tenure,
    K = 1 and ``distinct_vouchers`` fresh single vouches: by symmetry every member has the
    same score, no collusion penalty applies (top-2 share 2/D ≤ 0.8 for D ≥ 3), so
    Sᵏ = α + γ·√(D·min(Sᵏ⁻¹, cap)) — in the rules' own integer floors."""
    w = RULES.weights
    s = w.alpha
    for _ in range(RULES.iterations):
        weighted = distinct_vouchers * min(max(s, 0), RULES.caps.voucher_score) * MICRO
        v = math.isqrt(weighted // MICRO * MICRO)
        s = w.alpha + (w.gamma * v) // MICRO
    return s


def _tier_index(name: str | None) -> int:
    return -1 if name is None else RULES_ORDER.index(name)


def test_ring_without_kyc_scores_zero() -> None:
    """Fresh DIDs without KYC (members with an attestation-free, non-KYC membership, or no
    membership at all): K = A = T = 0, so S⁰ = 0, every c_j = 0, V = 0 — the ring lends
    itself nothing, whatever the vouches."""
    members = [member(f"r{i}", kyc=False) for i in range(RING // 2)]
    events = _ring(epochs=4)
    for records in (
        reference_records(events, members, RULES),
        sparse_records(events, members, RULES),
    ):
        assert len(records) == RING
        assert {r.score for r in records.values()} == {0}
        assert {r.tier for r in records.values()} == {"bronze"}


def test_fresh_kyc_ring_one_epoch_stays_below_gold() -> None:
    """A ring of 100 fresh KYC members with one epoch's budget and no outside vouches: the
    bound with D = 5 is 56.222353 < 60, so silver at most, never gold."""
    bound = ring_bound(BUDGET)
    assert bound == 56_222_353  # S: 10 → 31.213201 → 47.477914 → 56.222353
    gold = next(t for t in RULES.aura.tiers if t.name == "gold")
    assert bound < gold.min_score
    members = [member(f"r{i}") for i in range(RING)]
    events = _ring(epochs=1)
    reference = reference_records(events, members, RULES)
    assert reference == sparse_records(events, members, RULES)
    for record in reference.values():
        assert record.score <= bound
        assert record.diversity == BUDGET
        assert _tier_index(record.tier) <= RULES_ORDER.index("silver")
    assert max(r.score for r in reference.values()) == bound  # the symmetric ring attains it


def test_fresh_kyc_ring_bound_over_epochs() -> None:
    """Over more epochs the ring meets more distinct vouchers and the bound grows with D:
    the scorer never exceeds it (two epochs: D = 10, and gold becomes reachable — a ring of
    real, KYC-checked persons vouching in concert over months is what the rules do NOT stop;
    docs/reputation.md says so)."""
    members = [member(f"r{i}") for i in range(RING)]
    events = _ring(epochs=2)
    bound = ring_bound(2 * BUDGET)
    records = reference_records(events, members, RULES)
    assert records == sparse_records(events, members, RULES)
    assert max(r.score for r in records.values()) == bound
    assert all(r.score <= bound for r in records.values())


def test_colluding_pair_stays_bronze() -> None:
    """Two members vouching for each other to the budget, even with every other factor at
    its cap (5 attestations, a year's tenure): one voucher each, so diversity 1 < silver's
    2 clamps them to bronze, and the top-2 share 1 > 0.8 halves their vouch sum."""
    members = [member("p", days=365, attestations=5), member("q", days=365, attestations=5)]
    events = [event("vouch", did("p"), did("q"), 0, salt=str(n)) for n in range(BUDGET)] + [
        event("vouch", did("q"), did("p"), 0, salt=str(n)) for n in range(BUDGET)
    ]
    records = reference_records(events, members, RULES)
    assert records == sparse_records(events, members, RULES)
    silver = next(t for t in RULES.aura.tiers if t.name == "silver")
    for record in records.values():
        assert record.score >= silver.min_score  # the score alone would be silver …
        assert record.tier == "bronze"  # … the diversity clamp holds them at bronze
        assert record.collusion_applied
        assert record.diversity == 1
