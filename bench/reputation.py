"""Reputation scorer figures (issue 19): full recompute, incremental update, records.

Prints one JSON line per figure.  The graph is generated deterministically (numpy
``default_rng(--seed)``): ``--dids`` nodes, 90 % of them KYC members (tenure and attestations
drawn at random, 10 % with a non-KYC membership or none), ``--edges`` vouches in one context
sent only by KYC members over ``--epochs`` months, never more than the contract's budget of
``vouchesPerEpoch`` (5) per sender and epoch, about 10 % of them repeats of a voucher's
previous subject (so the per-counterparty cap and decay exponent have work), ages spread over
the epochs (the decay table has one entry per distinct day), and ``--edges``/100 reports, one per
KYC sender (within ``reportsPerEpoch``).

Figures:

* ``baseline_matvec`` — one scipy sparse matrix-vector product (int64) of the same graph's
  (subject, voucher) matrix: the floor any recompute of ``iterations`` rounds sits on.
* ``full_recompute`` — :func:`score_sparse` on the columns: sort, pair aggregation, q_j, the
  collusion test, R and ``iterations`` integer mat-vecs.  Targets (issue 19): ≤ 60 s at
  1,000,000 DIDs / 10,000,000 edges; peak RSS of the whole process (inputs included,
  ``resource.getrusage``) ≤ 4 GiB.  ``traced_peak_mib`` is tracemalloc's peak during the
  recompute alone (numpy reports its buffers to tracemalloc), on a second run with
  ``--trace``.
* ``incremental`` — :meth:`SparseScores.add_events` with ``--new-events`` new vouches and
  reports of the current epoch (within budget): the k-hop out-neighbourhood recomputed.
  Target ≤ 1 s.  With ``--verify`` (default below 200,000 DIDs) a second full recompute of
  all events must give the same scores.
* ``record_jcs`` — building and serialising ``--records`` score records (RFC 8785 bytes).

Usage: python bench/reputation.py [--dids 1000000] [--edges 10000000] [--new-events 1000]
       [--epochs 24] [--seed 19] [--records 1000] [--trace] [--verify|--no-verify]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import resource
import statistics
import time
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, date, datetime
from datetime import time as clock
from importlib import resources
from typing import overload

import numpy as np
import numpy.typing as npt

from credit_commons.reputation import RuleSet, ScoringEvent, parse_rule_set
from credit_commons.reputation.scorer_columns import ScoringColumns
from credit_commons.reputation.scorer_sparse import score_sparse

CTX = "shg:savings"
AS_OF = date(2027, 3, 1)
DAYS_PER_EPOCH = 30


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def rss_mib() -> float:
    # ru_maxrss is in KiB on Linux: the process's peak resident set so far.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Dids(Sequence[str]):
    """Node i's DID, made on demand (the scorer treats DIDs as opaque strings; a million
    real did:key strings would only cost the benchmark memory)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...
    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if not 0 <= i < self.n:
            raise IndexError(i)
        return f"did:key:z6MkBench{i:010d}"


class Cids(Sequence[str]):
    """Event i's CID (CIDv1, raw, sha2-256 of the event index), made on demand: only the
    records the benchmark serialises need them."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...
    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if not 0 <= i < self.n:
            raise IndexError(i)
        # CIDv1 (0x01), raw (0x55), sha2-256 (0x12, 32 bytes), multibase base32 lower ("b"):
        # the bytes multiformats writes, without its per-call validation cost.
        digest = hashlib.sha256(i.to_bytes(8, "big")).digest()
        text = base64.b32encode(b"\x01\x55\x12\x20" + digest).decode().lower().rstrip("=")
        return "b" + text


def rule_set() -> RuleSet:
    """The contract's example rule set, as the package ships it."""
    text = resources.files("credit_commons.reputation").joinpath("dev_rules.json").read_text()
    return parse_rule_set(json.loads(text))


def generate(
    n: int, edges: int, epochs: int, seed: int, rules: RuleSet
) -> tuple[ScoringColumns, npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The graph's columns, each vouch's epoch, and which nodes are KYC members."""
    rng = np.random.default_rng(seed)
    budget = rules.budgets.vouches_per_epoch
    kyc = rng.random(n) < 0.9
    member = kyc | (rng.random(n) < 0.5)
    attestations = np.where(member, rng.integers(0, 8, n), 0)
    tenure = np.where(member, rng.integers(0, 800, n), 0)
    k = kyc.astype(np.int64)
    a = np.minimum(attestations, rules.caps.attestations).astype(np.int64)
    cap = rules.caps.tenure_days
    t = (np.minimum(tenure, cap) * 1_000_000 // cap).astype(np.int64)
    senders_pool = np.flatnonzero(kyc)
    senders = np.sort(senders_pool[rng.integers(0, len(senders_pool), edges)]).astype(np.int32)
    # Each sender's r-th vouch goes to its block r // budget, each block to a distinct epoch
    # (shifted by a per-sender offset so that epochs fill evenly): at most `budget` vouches
    # per sender and epoch.
    first = np.r_[True, senders[1:] != senders[:-1]]
    starts = np.flatnonzero(first)
    rank = np.arange(edges) - np.repeat(starts, np.diff(np.r_[starts, edges]))
    keep = rank // budget < epochs
    senders, rank = senders[keep], rank[keep]
    offset = rng.integers(0, epochs, n)
    epoch = (rank // budget + offset[senders]) % epochs
    m = len(senders)
    subjects = rng.integers(0, n, m).astype(np.int32)
    repeat = (rng.random(m) < 0.1) & (rank > 0)
    idx = np.flatnonzero(repeat)
    subjects[idx] = subjects[idx - 1]  # the same sender's previous subject (sorted by sender)
    clash = subjects == senders
    subjects[clash] = (subjects[clash] + 1) % n
    # Epoch e is the month e months before the current one; the day within it at random.
    days = ((epochs - 1 - epoch) * DAYS_PER_EPOCH + rng.integers(0, DAYS_PER_EPOCH, m)).astype(
        np.int32
    )
    r = max(1, edges // 100)
    # One report per sender (without replacement): within reportsPerEpoch by construction.
    report_from = rng.choice(senders_pool, size=min(r, len(senders_pool)), replace=False)
    report_from = report_from.astype(np.int32)
    r = len(report_from)
    report_to = rng.integers(0, n, r).astype(np.int32)
    report_to[report_to == report_from] = (report_to[report_to == report_from] + 1) % n
    report_days = rng.integers(0, 120, r).astype(np.int32)
    cols = ScoringColumns(
        dids=Dids(n),
        k=k,
        a=a,
        t=t,
        vouch_from=senders,
        vouch_to=subjects,
        vouch_days=days,
        vouch_cid=np.arange(m, dtype=np.int64),
        report_from=report_from,
        report_to=report_to,
        report_days=report_days,
        report_cid=np.arange(m, m + r, dtype=np.int64),
        cids=Cids(m + r),
    )
    return cols, epoch.astype(np.int64), kyc


def new_events(
    cols: ScoringColumns,
    epoch: npt.NDArray[np.int64],
    kyc: npt.NDArray[np.bool_],
    count: int,
    epochs: int,
    seed: int,
    rules: RuleSet,
) -> list[ScoringEvent]:
    """``count`` new events of the current epoch from KYC members that still have budget in
    it (one each), 90 % vouches and 10 % reports, issued on the scoring date."""
    rng = np.random.default_rng(seed + 1)
    n = len(cols.dids)
    current = np.bincount(cols.vouch_from[epoch == epochs - 1], minlength=n)
    free = np.flatnonzero(kyc & (current < rules.budgets.vouches_per_epoch))
    senders = rng.choice(free, size=count, replace=False)
    subjects = rng.integers(0, n, count)
    subjects[subjects == senders] = (subjects[subjects == senders] + 1) % n
    at = datetime.combine(AS_OF, clock(9, 0), tzinfo=UTC)
    out = []
    for x, (s, o) in enumerate(zip(senders.tolist(), subjects.tolist(), strict=True)):
        kind = "report" if x % 10 == 9 else "vouch"
        cid = "bafkrei" + hashlib.sha256(f"new{x}".encode()).hexdigest()[:52]
        out.append(
            ScoringEvent(
                type=kind,  # type: ignore[arg-type]
                sender=cols.dids[s],
                subject=cols.dids[o],
                ctx=CTX,
                issued_at=at,
                cid=cid,
            )
        )
    return out


def with_events(cols: ScoringColumns, events: list[ScoringEvent]) -> ScoringColumns:
    """The columns with ``events`` appended (all between existing nodes, age 0)."""
    index = {f"did:key:z6MkBench{i:010d}": i for i in range(len(cols.dids))}
    vouches = [e for e in events if e.type == "vouch"]
    reports = [e for e in events if e.type == "report"]
    base = len(cols.cids)

    def idx(values: list[str]) -> npt.NDArray[np.int32]:
        return np.array([index[v] for v in values], dtype=np.int32)

    class More(Sequence[str]):
        def __len__(self) -> int:
            return base + len(events)

        @overload
        def __getitem__(self, i: int) -> str: ...
        @overload
        def __getitem__(self, i: slice) -> Sequence[str]: ...
        def __getitem__(self, i: int | slice) -> str | Sequence[str]:
            if isinstance(i, slice):
                return [self[j] for j in range(*i.indices(len(self)))]
            if i < base:
                return cols.cids[i]
            return (vouches + reports)[i - base].cid

    nv = len(vouches)
    return ScoringColumns(
        dids=cols.dids,
        k=cols.k,
        a=cols.a,
        t=cols.t,
        vouch_from=np.r_[cols.vouch_from, idx([e.sender for e in vouches])],
        vouch_to=np.r_[cols.vouch_to, idx([e.subject for e in vouches])],
        vouch_days=np.r_[cols.vouch_days, np.zeros(nv, dtype=np.int32)],
        vouch_cid=np.r_[cols.vouch_cid, np.arange(base, base + nv, dtype=np.int64)],
        report_from=np.r_[cols.report_from, idx([e.sender for e in reports])],
        report_to=np.r_[cols.report_to, idx([e.subject for e in reports])],
        report_days=np.r_[cols.report_days, np.zeros(len(reports), dtype=np.int32)],
        report_cid=np.r_[cols.report_cid, np.arange(base + nv, base + len(events), dtype=np.int64)],
        cids=More(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dids", type=int, default=1_000_000)
    parser.add_argument("--edges", type=int, default=10_000_000)
    parser.add_argument("--new-events", type=int, default=1_000)
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--records", type=int, default=1_000)
    parser.add_argument("--trace", action="store_true", help="a second recompute under tracemalloc")
    parser.add_argument("--verify", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args()
    rules = rule_set()
    started = time.perf_counter()
    cols, epoch, kyc = generate(args.dids, args.edges, args.epochs, args.seed, rules)
    emit(
        figure="graph",
        dids=args.dids,
        vouches=len(cols.vouch_from),
        reports=len(cols.report_from),
        distinct_days=len(np.unique(cols.vouch_days)),
        max_vouches_per_sender_epoch=int(
            np.bincount(cols.vouch_from.astype(np.int64) * args.epochs + epoch).max()
        ),
        max_reports_per_sender=int(np.bincount(cols.report_from).max()),
        seconds=round(time.perf_counter() - started, 2),
        rss_mib=rss_mib(),
    )

    started = time.perf_counter()
    state = score_sparse(cols, rules, as_of=AS_OF, ctx=CTX)
    full = time.perf_counter() - started
    tiers = np.unique(
        np.searchsorted([t.min_score for t in rules.aura.tiers], state.scores, side="right"),
        return_counts=True,
    )

    x = np.clip(state.scores, 0, rules.caps.voucher_score).astype(np.int64)
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        state.q @ x
        runs.append(time.perf_counter() - t0)
    baseline = statistics.median(runs)
    emit(
        figure="baseline_matvec",
        nnz=int(state.q.nnz),
        seconds=round(baseline, 4),
        note="one int64 CSR mat-vec of the (subject, voucher) matrix, median of 5",
    )
    emit(
        figure="full_recompute",
        dids=args.dids,
        edges=len(cols.vouch_from),
        pairs=int(state.q.nnz),
        iterations=rules.iterations,
        seconds=round(full, 2),
        target_seconds=60,
        vs_baseline=round(full / baseline, 1),
        peak_rss_mib=rss_mib(),
        target_rss_mib=4096,
        nodes_by_score_tier={
            (rules.aura.tiers[int(b) - 1].name if b else "none"): int(c)
            for b, c in zip(*tiers, strict=True)
        },
        collusion_applied=int(state.collusion.sum()),
    )
    if args.trace:
        tracemalloc.start()
        score_sparse(cols, rules, as_of=AS_OF, ctx=CTX)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        emit(figure="full_recompute_traced", traced_peak_mib=round(peak / 2**20, 1))

    events = new_events(cols, epoch, kyc, args.new_events, args.epochs, args.seed, rules)
    started = time.perf_counter()
    changed = state.add_events(events)
    incremental = time.perf_counter() - started
    verify = args.verify if args.verify is not None else args.dids < 200_000
    agreed: bool | None = None
    if verify:
        again = score_sparse(with_events(cols, events), rules, as_of=AS_OF, ctx=CTX)
        agreed = bool(np.array_equal(again.scores, state.scores)) and all(
            again.record(d).to_jcs() == state.record(d).to_jcs() for d in changed[:200]
        )
    emit(
        figure="incremental",
        new_events=len(events),
        recomputed=len(changed),
        seconds=round(incremental, 3),
        target_seconds=1,
        vs_baseline=round(incremental / baseline, 1),
        equals_full=agreed,
        peak_rss_mib=rss_mib(),
    )

    sample = [cols.dids[i] for i in range(0, args.dids, max(1, args.dids // args.records))]
    times = []
    size = 0
    for d in sample[: args.records]:
        t0 = time.perf_counter()
        size += len(state.record(d).to_jcs())
        times.append(time.perf_counter() - t0)
    times.sort()
    emit(
        figure="record_jcs",
        records=len(times),
        p50_ms=round(times[len(times) // 2] * 1000, 3),
        p95_ms=round(times[int(len(times) * 0.95)] * 1000, 3),
        mean_bytes=size // max(1, len(times)),
    )


if __name__ == "__main__":
    main()
