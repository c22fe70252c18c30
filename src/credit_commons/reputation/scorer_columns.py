"""Columns for the sparse scorer (:mod:`credit_commons.reputation.scorer_sparse`): one
context's events and members as numpy arrays, and the exact integer helpers the sparse
recompute runs on them (segment sums, floor square roots, top-2 per row, int64 bounds)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from credit_commons.reputation.rules import MICRO, RuleSet
from credit_commons.reputation.scorer import (
    ScoringError,
    ScoringEvent,
    ScoringMember,
    ScoringRules,
    attestation_count,
    decay_weight,
    kyc_flag,
    scored_events,
    tenure_micro,
)

__all__ = ["SAFE", "ScoringColumns", "columns_from_events"]

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

# Bounds are checked against 2^62 so that one more addition of a bounded term cannot wrap.
SAFE = 2**62


@dataclass(frozen=True)
class ScoringColumns:
    """One context's scoring inputs as columns, already filtered (issued on or before the
    scoring date, no excluded DID on either side, no self-vouch).

    ``dids[i]`` names node ``i``; ``k``, ``a`` (capped attestations) and ``t`` (tenure in
    micro) are per node.  Vouches and reports are parallel arrays: sender index, subject
    index, age in whole days, index into ``cids``.  ``excluded`` names the DIDs whose
    events an incremental update must ignore as the full recompute did.
    """

    dids: Sequence[str]
    k: I64
    a: I64
    t: I64
    vouch_from: I32
    vouch_to: I32
    vouch_days: I32
    vouch_cid: I64
    report_from: I32
    report_to: I32
    report_days: I32
    report_cid: I64
    cids: Sequence[str]
    excluded: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        n = len(self.dids)
        if not (len(self.k) == len(self.a) == len(self.t) == n):
            raise ScoringError("node columns must all have one row per DID")
        if n >= 2**31:
            raise ScoringError("node indices are int32")
        for prefix in ("vouch", "report"):
            lengths = {len(getattr(self, f"{prefix}_{c}")) for c in ("from", "to", "days", "cid")}
            if len(lengths) != 1:
                raise ScoringError(f"{prefix} columns must have the same length")


def columns_from_events(
    events: Iterable[ScoringEvent],
    members: Iterable[ScoringMember],
    excluded: Iterable[str],
    rule_set: RuleSet,
    *,
    as_of: date,
    ctx: str,
) -> ScoringColumns:
    """The columns of the same inputs :func:`~credit_commons.reputation.scorer.score_reference`
    takes (the service's path; the benchmark builds columns directly)."""
    rules = ScoringRules.of(rule_set)
    gone = frozenset(excluded)
    by_did = {m.did: m for m in members if m.did not in gone}
    used = scored_events(events, gone, ctx, as_of)
    nodes = set(by_did)
    for e in used:
        nodes.update((e.sender, e.subject))
    dids = sorted(nodes)
    index = {d: i for i, d in enumerate(dids)}
    vouches = [e for e in used if e.type == "vouch"]
    reports = [e for e in used if e.type == "report"]
    cids = [e.cid for e in vouches] + [e.cid for e in reports]

    def column(values: list[int], dtype: type[Any]) -> Any:
        return np.asarray(values, dtype=dtype)

    return ScoringColumns(
        dids=dids,
        k=column([kyc_flag(by_did.get(d), as_of) for d in dids], np.int64),
        a=column([attestation_count(by_did.get(d), as_of, rules) for d in dids], np.int64),
        t=column([tenure_micro(by_did.get(d), as_of, rules) for d in dids], np.int64),
        vouch_from=column([index[e.sender] for e in vouches], np.int32),
        vouch_to=column([index[e.subject] for e in vouches], np.int32),
        vouch_days=column([(as_of - e.issued_on).days for e in vouches], np.int32),
        vouch_cid=np.arange(len(vouches), dtype=np.int64),
        report_from=column([index[e.sender] for e in reports], np.int32),
        report_to=column([index[e.subject] for e in reports], np.int32),
        report_days=column([(as_of - e.issued_on).days for e in reports], np.int32),
        report_cid=np.arange(len(vouches), len(cids), dtype=np.int64),
        cids=cids,
        excluded=gone,
    )


# --- integer helpers ---------------------------------------------------------------------


def weight_table(days: npt.NDArray[Any], rules: ScoringRules) -> I64:
    """w(d) for every d from 0 to the largest age present, computed once per distinct d."""
    top = int(days.max()) if len(days) else 0
    return np.array([decay_weight(d, rules.half_life_days) for d in range(top + 1)], dtype=np.int64)


def segment_sums(values: I64, bounds: npt.NDArray[Any]) -> I64:
    """Exact int64 sums of ``values[bounds[i]:bounds[i+1]]`` (empty segments sum to 0)."""
    running = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(values, out=running[1:])
    return np.asarray(running[bounds[1:]] - running[bounds[:-1]], dtype=np.int64)


def isqrt(x: I64) -> I64:
    """Elementwise floor square root of non-negative int64 values below 2^62, exact: the
    float estimate is off by at most one and corrected in integers."""
    s = np.floor(np.sqrt(x.astype(np.float64))).astype(np.int64)
    for _ in range(2):
        s -= (s * s > x).astype(np.int64)
        s += ((s + 1) * (s + 1) <= x).astype(np.int64)
    return s


def row_top2(q: I64, rows: I64, indptr: npt.NDArray[Any], n: int) -> I64:
    """Per row, the sum of its two largest values (rows are contiguous in ``q``)."""
    out = np.zeros(n, dtype=np.int64)
    if len(q) == 0:
        return out
    nonempty = np.flatnonzero(indptr[1:] > indptr[:-1])
    starts = indptr[:-1][nonempty]
    first = np.maximum.reduceat(q, starts)
    best = np.zeros(n, dtype=np.int64)
    best[nonempty] = first
    is_best = np.flatnonzero(q == best[rows])
    # The first position of each row's maximum: drop it, and the rest's maximum is the second.
    leading = is_best[np.r_[True, rows[is_best][1:] != rows[is_best][:-1]]]
    rest = q.copy()
    rest[leading] = -1
    second = np.maximum(np.maximum.reduceat(rest, starts), 0)
    out[nonempty] = first + second
    return out


def fits_int64(rules: ScoringRules, qsum: I64, r: I64, a: I64) -> bool:
    """Whether every intermediate of a round stays below 2^62 in int64 (checked with Python
    integers on the largest inputs)."""
    q_max = int(qsum.max()) if len(qsum) else 0
    weighted = q_max * rules.voucher_score_cap
    penalised = (weighted // MICRO) * max(rules.collusion_multiplier, MICRO)
    v_max = int(np.sqrt(float(max(weighted, penalised)))) + 2
    r_max = int(r.max()) if len(r) else 0
    a_max = int(a.max()) if len(a) else 0
    inner = abs(rules.gamma) * v_max + abs(rules.delta) * r_max + abs(rules.tau) * MICRO
    outer = abs(rules.alpha) + abs(rules.beta) * a_max + inner // MICRO + 1
    return max(weighted, penalised, v_max * v_max, inner, outer) < SAFE
