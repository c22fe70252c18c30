"""The scorer of :mod:`credit_commons.reputation.scorer` for a million DIDs: numpy/scipy.

Same integers, computed a column at a time (docs/reputation.md, "Scoring"):

1. the events of one context arrive as columns (:class:`ScoringColumns`): sender, subject,
   age in days and a CID index per event, one row per node for K, A and T;
2. the vouches are sorted by (subject, voucher) once; each pair's count and weight sum give
   its q_j, and the pairs are a CSR matrix Q with rows = subjects, columns = vouchers;
3. per subject the sum and the two largest q_j (the collusion test) and the diversity are
   fixed for the whole recompute, and so is R;
4. each round is one integer mat-vec ``Q @ clip(S)``, then the floor square root and the
   combination, elementwise in int64.

Every step is integer arithmetic (numpy's ``//`` floors like Python's), so the result is the
reference scorer's, byte for byte.  Where a rule set's numbers could overflow int64, the
round falls back to Python integers (:func:`_fits_int64` decides before computing).

:class:`SparseScores` keeps what a recompute built, so that new events of the same day are
folded in by recomputing only the k-hop out-neighbourhood of the subjects they touch
(:meth:`SparseScores.add_events`), and so are changed memberships (a new member, a
revocation, a suspension or reinstatement: :meth:`SparseScores.update_members`); a full
recompute gives the same records.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from credit_commons.reputation.rules import MICRO, RuleSet
from credit_commons.reputation.scorer import (
    ScoreRecord,
    ScoringError,
    ScoringEvent,
    ScoringMember,
    ScoringRules,
    attestation_count,
    decay_weight,
    kyc_flag,
    power_micro,
    scored_events,
    tenure_micro,
)
from credit_commons.reputation.scorer_columns import (
    SAFE,
    ScoringColumns,
    columns_from_events,
    fits_int64,
    isqrt,
    row_top2,
    segment_sums,
    weight_table,
)

__all__ = ["ScoringColumns", "SparseScores", "columns_from_events", "score_sparse"]

I64 = npt.NDArray[np.int64]


# --- the recompute -----------------------------------------------------------------------


class SparseScores:
    """A full recompute of one context on one date, kept for incremental updates.

    Build with :func:`score_sparse`.  ``scores`` is S after ``rules.iterations`` rounds per
    node; :meth:`record` gives a node's :class:`ScoreRecord`; :meth:`add_events` folds in
    new events of the same scoring date.
    """

    def __init__(self, cols: ScoringColumns, rule_set: RuleSet, *, as_of: date, ctx: str) -> None:
        rules = ScoringRules.of(rule_set)
        self.rules, self.as_of, self.ctx = rules, as_of, ctx
        self.excluded = cols.excluded
        self.dids: list[str] = list(cols.dids)
        # The columns' CIDs are read only for the records asked for (a sequence may make
        # them on demand); the CIDs of events added later follow them.
        self._base_cids = cols.cids
        self._new_cids: list[str] = []
        self._index: dict[str, int] | None = None
        n = len(self.dids)
        self.k, self.a, self.t = (
            np.asarray(cols.k, np.int64),
            np.asarray(cols.a, np.int64),
            np.asarray(cols.t, np.int64),
        )
        # n^decayExp (micro) for the capped counts seen so far; index 0 is never used.
        self._power = np.zeros(1, dtype=np.int64)
        self._build_pairs(cols, n)
        self._build_reports(cols, n)
        self._extra_vouches: dict[int, list[int]] = {}
        self._extra_pairs: dict[tuple[int, int], tuple[int, int]] = {}
        self._delta: sp.csr_array | None = None
        self._delta_out: sp.csr_array | None = None
        self._dids_index()  # built here, so that an incremental update does not pay for it
        self._compute_all()

    # -- building ---------------------------------------------------------------------

    def _build_pairs(self, cols: ScoringColumns, n: int) -> None:
        rules = self.rules
        table = weight_table(cols.vouch_days, rules)
        key = cols.vouch_to.astype(np.int64) * n + cols.vouch_from.astype(np.int64)
        order = np.argsort(key, kind="stable")
        key = key[order]
        weights = table[cols.vouch_days[order]]
        # The vouches' CIDs grouped by subject, for the records' event lists.
        self._vouch_cid = np.asarray(cols.vouch_cid, np.int64)[order]
        del order
        rows_of_events = key // n if n else key
        self._event_ptr = np.searchsorted(rows_of_events, np.arange(n + 1)).astype(np.int64)
        del rows_of_events
        if len(key):
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        else:
            starts = np.zeros(0, dtype=np.int64)
        bounds = np.r_[starts, len(key)]
        pair_key = key[starts]
        del key
        self._count = np.diff(bounds).astype(np.int64)
        self._wsum = segment_sums(weights, bounds)
        del weights
        rows = (pair_key // n).astype(np.int32) if n else pair_key.astype(np.int32)
        cols_ = (pair_key % n).astype(np.int32) if n else pair_key.astype(np.int32)
        del pair_key
        q = self._pair_q(self._count, self._wsum)
        indptr = np.searchsorted(rows, np.arange(n + 1)).astype(np.int64)
        self.q = sp.csr_array((q, cols_, indptr), shape=(n, n))
        self._rows = rows
        self.qsum = segment_sums(q, indptr)
        top2 = row_top2(q, rows.astype(np.int64), indptr, n)
        if len(q) and int(self.qsum.max()) * MICRO >= SAFE:
            # Σq ≤ 10^6 · (vouches received): only millions of vouches on one subject get
            # here; the same comparison in Python integers.
            self.collusion = top2.astype(object) * MICRO > rules.top2_threshold * self.qsum.astype(
                object
            )
            self.collusion = self.collusion.astype(np.bool_)
        else:
            self.collusion = top2 * MICRO > rules.top2_threshold * self.qsum
        self.diversity = np.diff(indptr).astype(np.int64)
        # Vouchers → subjects, for the out-neighbourhoods of an incremental update.
        self._out = sp.csr_array(self.q.T)

    def _pair_q(self, count: I64, wsum: I64) -> I64:
        """q_j of each pair from its count and weight sum (as :func:`pair_weight`)."""
        m = np.minimum(count, self.rules.per_counterparty_cap)
        top = int(m.max()) if len(m) else 0
        if top >= len(self._power):
            more = [
                power_micro(x, self.rules.decay_exponent) for x in range(len(self._power), top + 1)
            ]
            self._power = np.r_[self._power, np.array(more, dtype=np.int64)]
        average = wsum // np.maximum(count, 1)
        if top * MICRO * MICRO < SAFE:
            return np.asarray(average * m * MICRO // self._power[m], dtype=np.int64)
        # Counts this large would wrap the int64 numerator: the same division in Python ints.
        exact = [
            x * y * MICRO // p
            for x, y, p in zip(average.tolist(), m.tolist(), self._power[m].tolist(), strict=True)
        ]
        return np.array(exact, dtype=np.int64)

    def _build_reports(self, cols: ScoringColumns, n: int) -> None:
        self._report_from = np.asarray(cols.report_from, np.int32)
        self._report_to = np.asarray(cols.report_to, np.int32)
        self._report_days = np.asarray(cols.report_days, np.int32)
        self._report_cid = np.asarray(cols.report_cid, np.int64)
        self.r = self._reports_for(np.arange(n, dtype=np.int64), n)

    def _reports_for(self, subjects: I64, n: int) -> I64:
        """R per node, computed for ``subjects`` (an array of node indices; other entries 0)."""
        rules = self.rules
        r = np.zeros(n, dtype=np.int64)
        wanted = np.zeros(n, dtype=np.bool_)
        wanted[subjects] = True
        keep = (
            (self._report_days < rules.report_window_days)
            & (self.k[self._report_from] == 1)
            & wanted[self._report_to]
        )
        to, frm, days = self._report_to[keep], self._report_from[keep], self._report_days[keep]
        if len(to) == 0:
            return r
        # Most recent report per (subject, reporter): the smallest age.
        order = np.lexsort((days, frm, to))
        to, frm, days = to[order], frm[order], days[order]
        first = np.r_[True, (to[1:] != to[:-1]) | (frm[1:] != frm[:-1])]
        to, days = to[first], days[first]
        reporters = np.bincount(to, minlength=n)
        sums = segment_sums(weight_table(days, rules)[days], np.r_[0, np.cumsum(reporters)])
        r[:] = np.where(reporters >= rules.report_quorum, sums, 0)
        return r

    # -- rounds -----------------------------------------------------------------------

    def _round0(self) -> I64:
        rules = self.rules
        return np.asarray(
            rules.alpha * self.k
            + rules.beta * self.a
            + (rules.tau * self.t - rules.delta * self.r) // MICRO,
            dtype=np.int64,
        )

    def _combine(self, weighted: I64, rows: I64 | slice) -> tuple[I64, I64]:
        """V and S for ``rows`` from their ``Σ c_j·q_j``."""
        rules = self.rules
        total = weighted // MICRO
        total = np.where(self.collusion[rows], total * rules.collusion_multiplier // MICRO, total)
        v = isqrt(total * MICRO)
        s = (
            rules.alpha * self.k[rows]
            + rules.beta * self.a[rows]
            + (rules.gamma * v - rules.delta * self.r[rows] + rules.tau * self.t[rows]) // MICRO
        )
        return v, np.asarray(s, dtype=np.int64)

    def _weighted(self, scores: I64, rows: I64 | None) -> I64:
        """``Σ_j c_j·q_j`` for ``rows`` (all rows if None), base pairs plus new pairs."""
        c = np.clip(scores, 0, self.rules.voucher_score_cap)
        matrices = [m for m in (self.q, self._delta) if m is not None]
        out: I64 = np.zeros(len(scores) if rows is None else len(rows), dtype=np.int64)
        for m in matrices:
            if rows is None:
                out += np.asarray(m @ c, dtype=np.int64)
            elif len(rows) > len(scores) // 4:
                out += np.asarray(m @ c, dtype=np.int64)[rows]
            else:
                out += np.asarray(m[rows] @ c, dtype=np.int64)
        return out

    def _compute_all(self) -> None:
        if not fits_int64(self.rules, self.qsum, self.r, self.a):
            self._compute_python()
            return
        s = self._round0()
        self.history: list[I64] = [s]
        self.v = np.zeros(len(s), dtype=np.int64)
        for _ in range(self.rules.iterations):
            self.v, s = self._combine(self._weighted(s, None), slice(None))
            self.history.append(s)
        self.scores = s

    def _compute_python(self) -> None:
        """The same rounds with Python integers (rule sets whose numbers could wrap int64)."""
        rules = self.rules
        k, a, t, r = (x.tolist() for x in (self.k, self.a, self.t, self.r))
        indptr, indices, data = (
            self.q.indptr.tolist(),
            self.q.indices.tolist(),
            self.q.data.tolist(),
        )
        coll = self.collusion.tolist()
        n = len(k)

        def combine(i: int, v: int) -> int:
            return int(
                rules.alpha * k[i]
                + rules.beta * a[i]
                + (rules.gamma * v - rules.delta * r[i] + rules.tau * t[i]) // MICRO
            )

        s = [combine(i, 0) for i in range(n)]
        history = [np.array(s, dtype=object)]
        v = [0] * n
        for _ in range(rules.iterations):
            c = [min(max(x, 0), rules.voucher_score_cap) for x in s]
            for i in range(n):
                weighted = sum(data[p] * c[indices[p]] for p in range(indptr[i], indptr[i + 1]))
                total = weighted // MICRO
                if coll[i]:
                    total = total * rules.collusion_multiplier // MICRO
                v[i] = math.isqrt(total * MICRO)
            s = [combine(i, v[i]) for i in range(n)]
            history.append(np.array(s, dtype=object))
        self.history = history
        self.v = np.array(v, dtype=object)
        self.scores = np.array(s, dtype=object)

    # -- records ----------------------------------------------------------------------

    def index(self, did: str) -> int:
        """The node index of ``did``; raises KeyError for a DID that has no score here."""
        return self._dids_index()[did]

    def _report_cids(self, i: int) -> list[str]:
        rules = self.rules
        picked: dict[int, tuple[int, str]] = {}
        reporters = np.flatnonzero(self._report_to == i)
        for p in reporters.tolist():
            j = int(self._report_from[p])
            days = int(self._report_days[p])
            if days >= rules.report_window_days or int(self.k[j]) != 1:
                continue
            cid = self._cid(int(self._report_cid[p]))
            seen = picked.get(j)
            if seen is None or (days, cid) < seen:
                picked[j] = (days, cid)
        if len(picked) < rules.report_quorum:
            return []
        return [cid for _, cid in picked.values()]

    def _cid(self, i: int) -> str:
        base = len(self._base_cids)
        return self._base_cids[i] if i < base else self._new_cids[i - base]

    def record(self, did: str) -> ScoreRecord:
        """The score record of ``did`` (raises KeyError if it has none)."""
        i = self.index(did)
        start, end = int(self._event_ptr[i]), int(self._event_ptr[i + 1])
        cids = [self._cid(int(c)) for c in self._vouch_cid[start:end]]
        cids += [self._cid(c) for c in self._extra_vouches.get(i, [])]
        cids += self._report_cids(i)
        diversity = int(self.diversity[i])
        score = int(self.scores[i])
        return ScoreRecord(
            did=did,
            ctx=self.ctx,
            as_of=self.as_of,
            rule_set=self.rules.ref,
            k=int(self.k[i]),
            a=int(self.a[i]),
            v=int(self.v[i]),
            r=int(self.r[i]),
            t=int(self.t[i]),
            score=score,
            tier=self.rules.tier(self.ctx, score, diversity),
            diversity=diversity,
            collusion_applied=bool(self.collusion[i]),
            events=tuple(sorted(cids)),
        )

    def records(self) -> dict[str, ScoreRecord]:
        """Every node's record, by DID."""
        return {d: self.record(d) for d in self.dids}

    # -- incremental ------------------------------------------------------------------

    def add_events(self, events: Iterable[ScoringEvent]) -> list[str]:
        """Fold in new accepted events of this context (scored on the same date) and return
        the DIDs whose records may have changed: the subjects the events name and their
        out-neighbourhood up to ``rules.iterations`` hops.

        Only those nodes are recomputed, round by round (a node more than m hops away from
        every touched subject has the same Sᵐ as before).  Events the full recompute would
        ignore are ignored here too: another context, a later date, a self-vouch, an
        excluded DID on either side.  The new events' senders must already be nodes (an
        accepted event's sender is a member, and members are nodes); subjects may be new.
        Membership changes are :meth:`update_members`' (first: a new member becomes a
        node, so its events can follow).  Raises
        :class:`ScoringError`, before changing anything, for a sender that is not a node or
        when the state was computed with Python integers.
        """
        rules = self.rules
        if self.scores.dtype == object:
            raise ScoringError("incremental updates need the int64 path; recompute in full")
        index = self._dids_index()
        kept = scored_events(events, self.excluded, self.ctx, self.as_of)
        if any(e.sender not in index for e in kept):
            raise ScoringError("the sender of a new event must already be scored")
        new_pairs: dict[tuple[int, int], tuple[int, int]] = {}
        touched: set[int] = set()
        reports: list[tuple[int, int, int, int]] = []
        for e in kept:
            days = (self.as_of - e.issued_on).days
            j = index[e.sender]
            i = self._node(e.subject)
            touched.add(i)
            self._new_cids.append(e.cid)
            cid = len(self._base_cids) + len(self._new_cids) - 1
            if e.type == "report":
                reports.append((j, i, days, cid))
                continue
            self._extra_vouches.setdefault(i, []).append(cid)
            count, wsum = new_pairs.get((i, j), (0, 0))
            new_pairs[(i, j)] = (count + 1, wsum + decay_weight(days, rules.half_life_days))
        if not touched:
            return []
        self._merge_pairs(new_pairs)
        if reports:
            table = np.array(reports, dtype=np.int64)
            self._report_from = np.r_[self._report_from, table[:, 0].astype(np.int32)]
            self._report_to = np.r_[self._report_to, table[:, 1].astype(np.int32)]
            self._report_days = np.r_[self._report_days, table[:, 2].astype(np.int32)]
            self._report_cid = np.r_[self._report_cid, table[:, 3]]
        rows = np.array(sorted(touched), dtype=np.int64)
        self.r[rows] = self._reports_for(rows, len(self.dids))[rows]
        if not fits_int64(rules, self.qsum, self.r, self.a):
            raise ScoringError("new events push the rule set past int64; recompute in full")
        return self._propagate(rows)

    def update_members(self, members: Iterable[ScoringMember]) -> list[str]:
        """Fold in memberships that changed since the recompute (each member's whole current
        view: a new member, a revocation, a suspension or a reinstatement, more or fewer
        attestations) and return the DIDs whose records may have changed: the members whose
        K, A or T changed (or that are new nodes), the subjects they reported (a report
        counts only from a KYC member, so R follows K), and their out-neighbourhood up to
        ``rules.iterations`` hops — recomputed round by round as :meth:`add_events` does.
        A member unchanged is ignored, so is an excluded DID.  Raises :class:`ScoringError`,
        before changing anything, when the state was computed with Python integers.
        """
        if self.scores.dtype == object:
            raise ScoringError("incremental updates need the int64 path; recompute in full")
        rules, as_of = self.rules, self.as_of
        index = self._dids_index()
        changed: set[int] = set()
        for m in members:
            if m.did in self.excluded:
                continue
            new = m.did not in index
            i = self._node(m.did)
            values = (
                kyc_flag(m, as_of),
                attestation_count(m, as_of, rules),
                tenure_micro(m, as_of, rules),
            )
            if new or values != (int(self.k[i]), int(self.a[i]), int(self.t[i])):
                self.k[i], self.a[i], self.t[i] = values
                changed.add(i)
        if not changed:
            return []
        rows = np.array(sorted(changed), dtype=np.int64)
        reported = self._report_to[np.isin(self._report_from, rows)].astype(np.int64)
        rows = np.union1d(rows, reported).astype(np.int64)
        self.r[rows] = self._reports_for(rows, len(self.dids))[rows]
        if not fits_int64(rules, self.qsum, self.r, self.a):
            raise ScoringError("new memberships push the rule set past int64; recompute in full")
        return self._propagate(rows)

    def _propagate(self, rows: I64) -> list[str]:
        """Recompute round 0 of ``rows`` and each later round of their out-neighbourhood one
        hop further (a node more than m hops from every row has the same Sᵐ as before);
        the DIDs recomputed."""
        frontier = rows
        self.history[0][frontier] = self._round0()[frontier]
        for m in range(1, self.rules.iterations + 1):
            frontier = self._with_out_neighbours(frontier)
            v, s = self._combine(self._weighted(self.history[m - 1], frontier), frontier)
            self.history[m][frontier] = s
            self.v[frontier] = v
        self.scores = self.history[-1]
        return [self.dids[i] for i in frontier.tolist()]

    def _dids_index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {d: i for i, d in enumerate(self.dids)}
        return self._index

    def _node(self, did: str) -> int:
        """The index of ``did``, adding a node (no membership: K = A = T = 0) if it is new."""
        index = self._dids_index()
        if did in index:
            return index[did]
        i = len(self.dids)
        self.dids.append(did)
        index[did] = i
        zero = np.zeros(1, dtype=np.int64)
        self.k, self.a, self.t, self.r = (np.r_[x, zero] for x in (self.k, self.a, self.t, self.r))
        self.qsum, self.diversity, self.v = (
            np.r_[x, zero] for x in (self.qsum, self.diversity, self.v)
        )
        self.collusion = np.r_[self.collusion, np.zeros(1, dtype=np.bool_)]
        self._event_ptr = np.r_[self._event_ptr, self._event_ptr[-1:]]
        # A node without membership or vouches scores 0 in every round.
        self.history = [np.r_[h, zero] for h in self.history]
        for matrix in (self.q, self._out, self._delta, self._delta_out):
            if matrix is not None:
                matrix.resize((i + 1, i + 1))
        return i

    def _merge_pairs(self, new_pairs: dict[tuple[int, int], tuple[int, int]]) -> None:
        """Add the new (subject, voucher) counts and weight sums: a pair Q already has is
        updated in place; a new pair goes to the small matrix D of pairs added since the full
        recompute (Σ c_j·q_j is then Q·c + D·c, exact in integers).  Then refresh the sums,
        top-2 test and diversity of the subjects they touch."""
        q = self.q
        for (i, j), (count, wsum) in new_pairs.items():
            start, end = int(q.indptr[i]), int(q.indptr[i + 1])
            at = start + int(np.searchsorted(q.indices[start:end], j))
            if at < end and int(q.indices[at]) == j:
                self._count[at] += count
                self._wsum[at] += wsum
                q.data[at] = self._pair_q(self._count[at : at + 1], self._wsum[at : at + 1])[0]
            else:
                seen = self._extra_pairs.get((i, j), (0, 0))
                self._extra_pairs[(i, j)] = (seen[0] + count, seen[1] + wsum)
        n = q.shape[0]
        pairs = sorted(self._extra_pairs.items())
        rows = np.array([i for (i, _), _ in pairs], dtype=np.int64)
        cols = np.array([j for (_, j), _ in pairs], dtype=np.int32)
        counts = np.array([c for _, (c, _) in pairs], dtype=np.int64)
        sums = np.array([w for _, (_, w) in pairs], dtype=np.int64)
        indptr = np.searchsorted(rows, np.arange(n + 1)).astype(np.int64)
        self._delta = sp.csr_array((self._pair_q(counts, sums), cols, indptr), shape=(n, n))
        self._delta_out = sp.csr_array(self._delta.T)
        d = self._delta
        for i in sorted({i for i, _ in new_pairs}):
            values = np.r_[
                q.data[q.indptr[i] : q.indptr[i + 1]], d.data[d.indptr[i] : d.indptr[i + 1]]
            ]
            top = np.sort(values)[::-1]
            self.qsum[i] = int(values.sum())
            self.diversity[i] = len(values)
            self.collusion[i] = int(top[:2].sum()) * MICRO > self.rules.top2_threshold * int(
                self.qsum[i]
            )

    def _with_out_neighbours(self, nodes: I64) -> I64:
        """``nodes`` and the subjects they vouched for (Q's and D's columns → rows), sorted.
        A mask rather than a set union: linear in the nodes and the edges touched."""
        mask = np.zeros(len(self.dids), dtype=np.bool_)
        mask[nodes] = True
        for out in (self._out, self._delta_out):
            if out is not None and len(nodes):
                mask[out[nodes].indices] = True
        return np.flatnonzero(mask).astype(np.int64)


def score_sparse(cols: ScoringColumns, rule_set: RuleSet, *, as_of: date, ctx: str) -> SparseScores:
    """A full recompute of one context on one date (see the module docstring)."""
    return SparseScores(cols, rule_set, as_of=as_of, ctx=ctx)
