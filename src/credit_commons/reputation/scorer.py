"""Seed 004's deterministic per-context score with seed 002's Aura rules, in exact integers.

This module is the specification made executable (docs/reputation.md, "Scoring"): a plain
per-node Python scorer (:func:`score_reference`), the shared arithmetic both scorers use
(decay and exponent tables, the tier and its diversity clamp) and the score record with its
RFC 8785 bytes.  :mod:`credit_commons.reputation.scorer_sparse` computes the same integers
for a million DIDs with numpy/scipy, and the tests check the two give the same bytes.

Every quantity is an integer in micro-units (1 unit = 1,000,000 micro).  Sums of integers
are exact and do not depend on the order of the events, so any correct implementation of
these rules — here, in the sparse recompute, or in an offline verifier — gives the same
score.  ``//`` is floor division (towards minus infinity, for negative numbers too).

Pure: no database, no clock, no network.  The caller passes the events, the members, the
excluded DIDs, the rule set's numbers and the date the score is computed at.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_FLOOR, Context, Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Literal

from credit_commons.core.encoding import JsonObject, canonical_json
from credit_commons.core.errors import ValidationError
from credit_commons.reputation.errors import ReputationError
from credit_commons.reputation.rules import MICRO, RuleSet, domain_matches

__all__ = [
    "RuleSetRef",
    "ScoreRecord",
    "ScoringError",
    "ScoringEvent",
    "ScoringMember",
    "ScoringRules",
    "TierRule",
    "decay_weight",
    "micro_string",
    "power_micro",
    "score_reference",
    "scored_events",
    "tier_of",
]


# Exact integer root checks cost a power of the root's denominator; beyond this the table
# value comes from 100-digit decimal arithmetic (see _root_floor).
_EXACT_ROOT_LIMIT = 4096
_DECIMAL = Context(prec=100, rounding=ROUND_FLOOR)


class ScoringError(ValidationError, ReputationError):
    """Inputs the scorer cannot score: an event of an unknown type or issued after the
    scoring date, a negative count, a sender the incremental path does not know, numbers
    too large for the int64 path of an incremental update.  (The rule set itself was
    checked by :func:`~credit_commons.reputation.rules.parse_rule_set`.)"""

    code = "reputation.scoring_invalid"
    title = "Inputs the scorer cannot score"


@dataclass(frozen=True, slots=True)
class RuleSetRef:
    """The rule set a score names: its id, version and SHA-256 hash (hex of its JCS bytes)."""

    id: str
    version: int
    hash: str

    def as_json(self) -> JsonObject:
        """The ``ruleSet`` member of a score record."""
        return {"id": self.id, "version": self.version, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class TierRule:
    """An Aura tier: reached when the score is at least ``min_score`` (micro), and only by a
    subject with at least ``min_diversity`` distinct vouchers."""

    name: str
    min_score: int
    min_diversity: int = 0


@dataclass(frozen=True, slots=True)
class ScoringRules:
    """The numbers of a rule set the scorer uses, flattened (all decimals in micro-units).

    Built from a parsed :class:`~credit_commons.reputation.rules.RuleSet` by :meth:`of`;
    the names follow the rule-set JSON (``weights.alpha`` is :attr:`alpha`,
    ``aura.perCounterpartyCap`` is :attr:`per_counterparty_cap`, ...).
    """

    ref: RuleSetRef
    alpha: int
    beta: int
    gamma: int
    delta: int
    tau: int
    voucher_score_cap: int
    attestations_cap: int
    tenure_days_cap: int
    half_life_days: int
    iterations: int
    report_quorum: int
    report_window_days: int
    per_counterparty_cap: int
    decay_exponent: int
    top2_threshold: int
    collusion_multiplier: int
    tiers: tuple[TierRule, ...]
    domain: str

    @classmethod
    def of(cls, rule_set: RuleSet) -> ScoringRules:
        """The scorer's numbers of a parsed rule set."""
        aura = rule_set.aura
        return cls(
            ref=RuleSetRef(id=rule_set.id, version=rule_set.version, hash=rule_set.hash),
            alpha=rule_set.weights.alpha,
            beta=rule_set.weights.beta,
            gamma=rule_set.weights.gamma,
            delta=rule_set.weights.delta,
            tau=rule_set.weights.tau,
            voucher_score_cap=rule_set.caps.voucher_score,
            attestations_cap=rule_set.caps.attestations,
            tenure_days_cap=rule_set.caps.tenure_days,
            half_life_days=rule_set.decay.half_life_days,
            iterations=rule_set.iterations,
            report_quorum=rule_set.adjudication.report_quorum,
            report_window_days=rule_set.adjudication.report_window_days,
            per_counterparty_cap=aura.per_counterparty_cap,
            decay_exponent=aura.per_counterparty_decay_exponent,
            top2_threshold=aura.collusion.top2_threshold,
            collusion_multiplier=aura.collusion.multiplier,
            tiers=tuple(
                TierRule(t.name, t.min_score, aura.diversity_minimum(t.name)) for t in aura.tiers
            ),
            domain=aura.domain,
        )

    def tier(self, ctx: str, score: int, diversity: int) -> str | None:
        """The tier of a score in ``ctx``: :func:`tier_of` inside the rule set's Aura domain,
        ``None`` outside it (a context outside the domain is scored but reaches no tier)."""
        if not domain_matches(self.domain, ctx):
            return None
        return tier_of(score, diversity, self.tiers)


def micro_string(value: int) -> str:
    """Micro-units as a decimal string with exactly six decimals (``1500000`` is ``"1.500000"``,
    ``-1`` is ``"-0.000001"``): how a score record writes every quantity."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), MICRO)
    return f"{sign}{whole}.{frac:06d}"


@dataclass(frozen=True, slots=True)
class ScoringEvent:
    """An accepted vouch or report as the scorer sees it (seed 004's ``type``, ``from``,
    ``to``, ``ctx``, ``issuedAt`` and the event's CID)."""

    type: Literal["vouch", "report"]
    sender: str
    subject: str
    ctx: str
    issued_at: datetime
    cid: str

    def __post_init__(self) -> None:
        if self.type not in ("vouch", "report"):
            raise ScoringError(f"unknown event type {self.type!r}")

    @property
    def issued_on(self) -> date:
        """The UTC date the event was issued on (decay counts whole days from it)."""
        at = self.issued_at
        return (at.astimezone(UTC) if at.tzinfo is not None else at).date()


@dataclass(frozen=True, slots=True)
class ScoringMember:
    """A registered member: the date it joined, whether its membership is a KYC one, the date
    it was revoked (if it was) and how many non-KYC attestations it registered."""

    did: str
    since: date
    kyc: bool
    revoked_on: date | None = None
    attestations: int = 0

    def __post_init__(self) -> None:
        if self.attestations < 0:
            raise ScoringError("a member's attestation count cannot be negative")

    def active(self, as_of: date) -> bool:
        """Whether the membership holds on ``as_of``: it began on or before that date and was
        not revoked by then (a revocation dated ``as_of`` already counts)."""
        return self.since <= as_of and (self.revoked_on is None or self.revoked_on > as_of)


# --- shared arithmetic -----------------------------------------------------------------


def _root_floor(base: int, num: int, den: int) -> int:
    """``floor(10^6 · base^(num/den))`` for integers ``base ≥ 1``, ``den ≥ 1``.

    The exact answer is the largest ``y`` with ``y^den ≤ base^num · 10^(6·den)`` (or
    ``y^den · base^-num ≤ 10^(6·den)`` when ``num < 0``).  A 100-digit decimal estimate is
    corrected by that integer comparison when ``den`` is small enough for the powers to be
    cheap; otherwise the value is exact if ``base`` is a perfect ``den``-th power (the only
    case where the result sits on an integer boundary) and taken from the estimate if not.
    """
    g = math.gcd(num, den)
    num, den = num // g, den // g
    estimate = _DECIMAL.multiply(
        Decimal(MICRO), _DECIMAL.power(Decimal(base), _DECIMAL.divide(Decimal(num), den))
    )
    y = int(estimate.to_integral_value(rounding=ROUND_FLOOR))
    if den == 1:
        return int(Fraction(base) ** num * MICRO)
    if den <= _EXACT_ROOT_LIMIT:
        scale = MICRO**den

        def fits(candidate: int) -> bool:
            if candidate < 0:
                return True
            if num >= 0:
                return bool(candidate**den <= base**num * scale)
            return bool(candidate**den * base ** (-num) <= scale)

        while not fits(y):
            y -= 1
        while fits(y + 1):
            y += 1
        return y
    root = round(Decimal(base) ** (Decimal(1) / den))
    if root**den == base:
        return int(Fraction(int(root)) ** num * MICRO)
    return y


@lru_cache(maxsize=65536)
def decay_weight(days: int, half_life_days: int) -> int:
    """An event's weight ``w = floor(10^6 · 2^(−days/half_life_days))`` in micro-units: a vouch
    ``half_life_days`` older weighs half (floored).  ``days`` is the whole days between the
    event's date and the scoring date (never negative: later events are not scored)."""
    if days < 0:
        raise ScoringError("an event issued after the scoring date has no weight")
    return _root_floor(2, -days, half_life_days)


@lru_cache(maxsize=4096)
def power_micro(n: int, exponent_micro: int) -> int:
    """``floor(10^6 · n^(exponent))`` for a count ``n ≥ 1`` and an exponent in micro-units:
    the table Aura's per-counterparty decay divides by."""
    if n < 1:
        raise ScoringError("counts start at 1")
    return _root_floor(n, exponent_micro, MICRO)


def tier_of(score: int, diversity: int, tiers: Sequence[TierRule]) -> str | None:
    """Aura's tier: the highest tier whose minScore the score reaches, then clamped by
    diversity as seed 002's ``clampTierByDiversity`` does: a tier whose diversity minimum
    the subject misses caps the result one level below it (never below the first tier).
    ``None`` when the score is below every tier's minimum."""
    level = -1
    for i, tier in enumerate(tiers):
        if tier.min_score <= score:
            level = i
    if level < 0:
        return None
    allowed = len(tiers) - 1
    for i, tier in enumerate(tiers):
        if diversity < tier.min_diversity:
            allowed = min(allowed, i - 1)
    return tiers[max(0, min(level, allowed))].name


def tenure_micro(member: ScoringMember | None, as_of: date, rules: ScoringRules) -> int:
    """T: the days an active membership has lasted, capped at ``caps.tenureDays``, as a
    fraction of the cap in micro-units (at most 1.000000)."""
    if member is None or not member.active(as_of):
        return 0
    days = min((as_of - member.since).days, rules.tenure_days_cap)
    return days * MICRO // rules.tenure_days_cap


def kyc_flag(member: ScoringMember | None, as_of: date) -> int:
    """K: 1 for an active KYC membership on ``as_of``, else 0."""
    return int(member is not None and member.kyc and member.active(as_of))


def attestation_count(member: ScoringMember | None, as_of: date, rules: ScoringRules) -> int:
    """A: the member's attestations, capped at ``caps.attestations`` (0 unless active)."""
    if member is None or not member.active(as_of):
        return 0
    return min(member.attestations, rules.attestations_cap)


def pair_weight(count: int, weight_sum: int, rules: ScoringRules) -> int:
    """Aura's per-counterparty weight q_j (micro): the average event weight times the capped
    count, divided by the capped count to the power of the decay exponent."""
    n = min(count, rules.per_counterparty_cap)
    average = weight_sum // count
    return average * n * MICRO // power_micro(n, rules.decay_exponent)


def colluding(top2: int, total: int, rules: ScoringRules) -> bool:
    """Aura's top-2 concentration test: the two largest q_j exceed ``top2Threshold`` of their
    sum (an empty or all-zero sum never does)."""
    return top2 * MICRO > rules.top2_threshold * total


def vouch_term(weighted: int, collusion: bool, rules: ScoringRules) -> int:
    """V (micro) from ``Σ_j c_j·q_j`` (micro²): floored to micro, the collusion multiplier
    applied if the concentration test failed, then the floor square root."""
    total = weighted // MICRO
    if collusion:
        total = total * rules.collusion_multiplier // MICRO
    return math.isqrt(total * MICRO)


def combine(k: int, a: int, v: int, r: int, t: int, *, rules: ScoringRules) -> int:
    """S = α·K + β·A + (γ·V − δ·R + τ·T) // 10^6, in micro-units."""
    return (
        rules.alpha * k
        + rules.beta * a
        + (rules.gamma * v - rules.delta * r + rules.tau * t) // MICRO
    )


def clip_voucher(score: int, rules: ScoringRules) -> int:
    """c_j = min(max(S_j, 0), caps.voucherScore)."""
    return min(max(score, 0), rules.voucher_score_cap)


# --- the score record ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """One subject's score in one context on one date, with the factors it came from and
    the CIDs of the events it used (its received vouches and the reports counted in R)."""

    did: str
    ctx: str
    as_of: date
    rule_set: RuleSetRef
    k: int
    a: int
    v: int
    r: int
    t: int
    score: int
    tier: str | None
    diversity: int
    collusion_applied: bool
    events: tuple[str, ...] = field(default=())

    def as_json(self) -> JsonObject:
        """The record as seed 004's ScoreRecord JSON (micro quantities as six-decimal
        strings; K and A are counts and written as such, in the same six-decimal form)."""
        return {
            "did": self.did,
            "ctx": self.ctx,
            "asOf": self.as_of.isoformat(),
            "ruleSet": self.rule_set.as_json(),
            "factors": {
                "K": micro_string(self.k * MICRO),
                "A": micro_string(self.a * MICRO),
                "V": micro_string(self.v),
                "R": micro_string(self.r),
                "T": micro_string(self.t),
            },
            "score": micro_string(self.score),
            "tier": self.tier,
            "diversity": self.diversity,
            "collusionApplied": self.collusion_applied,
            "events": list(self.events),
        }

    def to_jcs(self) -> bytes:
        """The record's RFC 8785 bytes: what two scorers must agree on byte for byte."""
        return canonical_json(self.as_json())


# --- the reference scorer ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Incoming:
    """A subject's scored inputs: per voucher q_j, the collusion flag, R and the CIDs."""

    q: dict[str, int]
    collusion: bool
    r: int
    cids: tuple[str, ...]


def scored_events(
    events: Iterable[ScoringEvent], excluded: frozenset[str], ctx: str, as_of: date
) -> list[ScoringEvent]:
    """The events a score on ``as_of`` in ``ctx`` takes into account: in that context, issued
    on or before ``as_of``, between two DIDs neither of which is excluded."""
    return [
        e
        for e in events
        if e.ctx == ctx
        and e.issued_on <= as_of
        and e.sender != e.subject
        and e.sender not in excluded
        and e.subject not in excluded
    ]


def _incoming(
    subject_events: list[ScoringEvent],
    members: Mapping[str, ScoringMember],
    rules: ScoringRules,
    as_of: date,
) -> _Incoming:
    counts: dict[str, int] = {}
    sums: dict[str, int] = {}
    cids: list[str] = []
    latest_report: dict[str, ScoringEvent] = {}
    for e in subject_events:
        days = (as_of - e.issued_on).days
        if e.type == "vouch":
            counts[e.sender] = counts.get(e.sender, 0) + 1
            sums[e.sender] = sums.get(e.sender, 0) + decay_weight(days, rules.half_life_days)
            cids.append(e.cid)
        elif days < rules.report_window_days and kyc_flag(members.get(e.sender), as_of):
            # The most recent report per reporter; on the same day the smallest CID, so the
            # choice (and the CIDs listed) does not depend on the events' order.
            seen = latest_report.get(e.sender)
            if seen is None or (e.issued_on, seen.cid) > (seen.issued_on, e.cid):
                latest_report[e.sender] = e
    q = {j: pair_weight(counts[j], sums[j], rules) for j in counts}
    ordered = sorted(q.values(), reverse=True)
    collusion = colluding(sum(ordered[:2]), sum(ordered), rules)
    r = 0
    if len(latest_report) >= rules.report_quorum:
        for e in latest_report.values():
            r += decay_weight((as_of - e.issued_on).days, rules.half_life_days)
            cids.append(e.cid)
    return _Incoming(q=q, collusion=collusion, r=r, cids=tuple(sorted(cids)))


def score_reference(
    events: Iterable[ScoringEvent],
    members: Iterable[ScoringMember],
    excluded: Iterable[str],
    rule_set: RuleSet,
    *,
    as_of: date,
    ctx: str,
) -> dict[str, ScoreRecord]:
    """Every subject's score record in ``ctx`` on ``as_of``, one node at a time.

    The subjects are the members and every DID an event in ``ctx`` names, less the excluded
    (tombstoned or restricted) DIDs, whose events are ignored too.  Round 0 scores each
    subject without the V term; each of the ``rules.iterations`` rounds after it recomputes
    V from the vouchers' scores of the round before.
    """
    rules = ScoringRules.of(rule_set)
    gone = frozenset(excluded)
    by_did = {m.did: m for m in members if m.did not in gone}
    used = scored_events(events, gone, ctx, as_of)
    nodes = set(by_did)
    received: dict[str, list[ScoringEvent]] = {}
    for e in used:
        nodes.add(e.sender)
        nodes.add(e.subject)
        received.setdefault(e.subject, []).append(e)
    inputs = {i: _incoming(received.get(i, []), by_did, rules, as_of) for i in nodes}
    fixed = {
        i: (
            kyc_flag(by_did.get(i), as_of),
            attestation_count(by_did.get(i), as_of, rules),
            tenure_micro(by_did.get(i), as_of, rules),
        )
        for i in nodes
    }
    scores = {i: combine(k, a, 0, inputs[i].r, t, rules=rules) for i, (k, a, t) in fixed.items()}
    v_terms = dict.fromkeys(nodes, 0)
    for _ in range(rules.iterations):
        for i in nodes:
            weighted = sum(clip_voucher(scores[j], rules) * q for j, q in inputs[i].q.items())
            v_terms[i] = vouch_term(weighted, inputs[i].collusion, rules)
        scores = {
            i: combine(k, a, v_terms[i], inputs[i].r, t, rules=rules)
            for i, (k, a, t) in fixed.items()
        }
    return {
        i: ScoreRecord(
            did=i,
            ctx=ctx,
            as_of=as_of,
            rule_set=rules.ref,
            k=fixed[i][0],
            a=fixed[i][1],
            v=v_terms[i],
            r=inputs[i].r,
            t=fixed[i][2],
            score=scores[i],
            tier=rules.tier(ctx, scores[i], len(inputs[i].q)),
            diversity=len(inputs[i].q),
            collusion_applied=inputs[i].collusion,
            events=inputs[i].cids,
        )
        for i in sorted(nodes)
    }
