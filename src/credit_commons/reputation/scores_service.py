"""Scores on signed checkpoints (issue 19 "Scoring", docs/reputation.md "Score bundles").

:func:`score_checkpoint` scores the latest signed checkpoint: the accepted events and the
memberships whose spine events are leaves below its size, under the rule set in effect at
its time, as of its UTC day, in every context the rule set allows.  On the same day, rule
set and excluded DIDs as the pass before, only the DIDs the new events and the changed
memberships touch and their k-hop dependants are recomputed (the kept sparse state's
incremental update); otherwise every context is recomputed in full.  The records, the
capability-queue rows of the subjects whose tier reached ``minTierForCredential`` and,
last, the cursor are written in one transaction: a crash mid-way loses nothing and scores
that checkpoint again.

The excluded DIDs (a DID's own tombstone, or the erasure of the identity it belongs to:
``reputation_exclusions``, written by ``service.exclude_did``) are read like memberships:
those whose ``reputation.excluded`` spine event is a leaf below the checkpoint.  They get no
record and their events count for nobody; a bundle's neighbourhood leaves their events out
too, so the offline recompute from the bundle's inputs gives the same record.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Final

from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject, b64url_encode, canonical_json, sha256_hex
from credit_commons.core.errors import ConflictError, NotFoundError
from credit_commons.core.ids import new_id
from credit_commons.events import EventRow, RecordedEvent, event_document
from credit_commons.formats.jws import sign_compact
from credit_commons.keys import KeyType, KeyVersion
from credit_commons.keys import service as key_service
from credit_commons.ledger import service as ledger_service
from credit_commons.reputation import scorer_sparse
from credit_commons.reputation import scores_store as store
from credit_commons.reputation import store as events_store
from credit_commons.reputation.errors import ReputationError
from credit_commons.reputation.models import ReputationEventRow, ReputationMemberRow
from credit_commons.reputation.rules import RuleSet
from credit_commons.reputation.rules_service import active_rule_set, get_rule_set, rule_set_keys
from credit_commons.reputation.scorer import ScoreRecord, ScoringError, ScoringEvent, ScoringMember
from credit_commons.reputation.scores_bundle import (
    BUNDLE_FORMAT,
    SALTED,
    STATEMENT_TYP,
    public_record,
    score_statement,
)
from credit_commons.reputation.scores_inputs import (
    day_of,
    excluded_below,
    iso_day,
    members_digest,
    scoring_events,
    scoring_members,
)
from credit_commons.runtime import Runtime

__all__ = [
    "BUNDLES_PER_PASS",
    "MAX_BUNDLE_INPUTS",
    "SCORES_KEY",
    "BundleTooLarge",
    "ScoreNotFound",
    "ScoringPass",
    "ScoringState",
    "build_requested_bundles",
    "capability_reason",
    "excluded_below",
    "score_bundle",
    "score_checkpoint",
    "score_statement_keys",
    "scoring_events",
    "scoring_members",
    "store_blob",
]

log = logging.getLogger("credit_commons.reputation.scores")

SCORES_KEY: Final = "reputation-scores"
_SCORES_KEY: Final = key_service.PlatformKey(SCORES_KEY, KeyType.ED25519, "reputation")


def score_statement_keys(session: Session, rt: Runtime) -> list[KeyVersion]:
    """Every version of the key that signs score statements (made on first use)."""
    return key_service.platform_key_versions(session, rt, _SCORES_KEY)


@dataclass(frozen=True, slots=True)
class ScoringPass:
    """What one scoring pass did: the checkpoint size and day scored, whether it was a full
    recompute, how many records it wrote and how many capability rows it queued."""

    size: int
    as_of: date
    full: bool
    records: int
    queued: int
    seconds: float


@dataclass
class ScoringState:
    """The sparse recomputes a worker keeps between passes, for incremental updates: valid
    for one checkpoint size, day, rule set and excluded set; with the memberships they
    scored (each DID's view, and the spine event ids of the membership rows below the
    checkpoint), so that the next pass folds in only the memberships that changed."""

    key: tuple[date, str, frozenset[str]] | None = None
    size: int = 0
    sparse: dict[str, scorer_sparse.SparseScores] = field(default_factory=dict)
    members: dict[str, ScoringMember] = field(default_factory=dict)
    member_events: frozenset[str] = frozenset()


def capability_reason(rule_set_id: str, did: str, ctx: str, tier: str) -> str:
    """SHA-256 (hex) of JCS{ruleSet, did, ctx, tier}: what makes a capability row unique."""
    return sha256_hex(
        canonical_json({"ruleSet": rule_set_id, "did": did, "ctx": ctx, "tier": tier})
    )


def _qualifies(rule_set: RuleSet) -> set[str]:
    names = [t.name for t in rule_set.aura.tiers]
    return set(names[names.index(rule_set.aura.min_tier_for_credential) :])


def score_checkpoint(rt: Runtime, state: ScoringState) -> ScoringPass | None:
    """Score the latest signed checkpoint unless the cursor covers it (see the module);
    ``None`` when there was nothing to do.  Raises what ``active_rule_set`` raises (no rule
    set in effect yet: ``RuleSetNotFound``)."""
    started = time.monotonic()
    with transaction(rt.sessions) as session:
        checkpoint = ledger_service.latest_checkpoint(session)
        cursor = store.cursor(session)
        if checkpoint is None or (cursor is not None and cursor.checkpoint_size >= checkpoint.size):
            return None
        size, root, at = checkpoint.size, bytes(checkpoint.root), utc(checkpoint.created_at)
        as_of = at.date()
        rule_set = active_rule_set(session, rt, at).rule_set
        all_members = store.members(session)
        excluded = excluded_below(session, size)
        key = (as_of, rule_set.hash, excluded)
        rows: list[store.ScoreRow] = []
        scored: tuple[list[ScoringMember], frozenset[str]] | None = None

        def row_of(record: ScoreRecord) -> store.ScoreRow:
            return _row(record, as_of, size, root, rule_set)

        full = True
        if state.key == key and cursor is not None and cursor.checkpoint_size == state.size:
            incremental = _incremental(session, state, rule_set, all_members, size)
            if incremental is not None:
                records, scored = incremental
                rows.extend(row_of(record) for record in records)
                full = False
        state.key, state.sparse = None, state.sparse if not full else {}
        if full:
            event_rows = store.events_of(session, rule_set.contexts)
            leaves = ledger_service.leaf_indices(
                session, [e.event_id for e in event_rows] + [m.event_id for m in all_members]
            )
            below = {eid for eid, leaf in leaves.items() if leaf[0] < size}
            events = scoring_events(e for e in event_rows if e.event_id in below)
            member_events = frozenset(m.event_id for m in all_members if m.event_id in below)
            members = scoring_members(
                (m for m in all_members if m.event_id in member_events), rule_set
            )
            scored = (members, member_events)
            for ctx in rule_set.contexts:
                ctx_rows = _full(state, (events, members, excluded), rule_set, as_of, ctx)
                rows.extend(row_of(r) for r in ctx_rows)
                store.replace_scores(session, ctx, rows[len(rows) - len(ctx_rows) :])
        else:
            store.upsert_scores(session, rows)
        queued = _enqueue(session, rt, rule_set, rows)
        store.set_cursor(
            session,
            size=size,
            as_of=as_of,
            rule_set_hash=rule_set.hash,
            members_digest=members_digest(all_members),
            at=rt.clock.now(),
        )
    # Committed: the kept state now describes this checkpoint.
    state.key, state.size = key, size
    if scored is not None:
        state.members = {m.did: m for m in scored[0]}
        state.member_events = scored[1]
    done = ScoringPass(size, as_of, full, len(rows), queued, time.monotonic() - started)
    log.info(
        "scoring pass: checkpoint %d, %s, %d records, %d queued, %.2fs",
        size,
        "full" if full else "incremental",
        done.records,
        queued,
        done.seconds,
    )
    return done


def _row(
    record: ScoreRecord, as_of: date, size: int, root: bytes, rule_set: RuleSet
) -> store.ScoreRow:
    jcs = record.to_jcs()
    return store.ScoreRow(
        did=record.did,
        ctx=record.ctx,
        as_of=as_of,
        checkpoint_size=size,
        checkpoint_root=root,
        rule_set_id=rule_set.id,
        rule_set_version=rule_set.version,
        rule_set_hash=rule_set.hash,
        record=jcs,
        record_hash=sha256_hex(jcs),
        tier=record.tier,
        bundle=None,
    )


def _incremental(
    session: Session,
    state: ScoringState,
    rule_set: RuleSet,
    all_members: Sequence[ReputationMemberRow],
    size: int,
) -> tuple[list[ScoreRecord], tuple[list[ScoringMember], frozenset[str]]] | None:
    """The records the leaves since the last pass and the changed memberships change, with
    the memberships now scored; ``None`` when a full recompute is needed (an incremental
    update the sparse scorer refuses).  Membership rows below the checkpoint are those the
    last pass scored and the others whose spine event is now a leaf below it; a DID's view
    that differs from the one kept (a new member, a revocation, a suspension or
    reinstatement, an attestation more) is folded in with ``update_members`` before the
    new events (a new member's first events need it as a node)."""
    new_leaves = ledger_service.event_ids_between(session, state.size, size)
    unknown = [m.event_id for m in all_members if m.event_id not in state.member_events]
    found = ledger_service.leaf_indices(session, unknown) if unknown else {}
    member_events = state.member_events | {e for e, leaf in found.items() if leaf[0] < size}
    members = scoring_members((m for m in all_members if m.event_id in member_events), rule_set)
    moved = [m for m in members if state.members.get(m.did) != m]
    fresh_rows = store.events_by_spine_ids(session, list(new_leaves))
    fresh = scoring_events(e for e in fresh_rows if e.ctx in rule_set.contexts)
    records: list[ScoreRecord] = []
    try:
        for ctx in rule_set.contexts:
            sparse = state.sparse[ctx]
            changed = dict.fromkeys(sparse.update_members(moved))
            changed.update(dict.fromkeys(sparse.add_events(e for e in fresh if e.ctx == ctx)))
            records.extend(sparse.record(did) for did in changed)
    except ScoringError as e:
        log.info("incremental scoring refused (%s); recomputing in full", e.code)
        return None
    return records, (members, frozenset(member_events))


def _full(
    state: ScoringState,
    inputs: tuple[list[ScoringEvent], list[ScoringMember], frozenset[str]],
    rule_set: RuleSet,
    as_of: date,
    ctx: str,
) -> list[ScoreRecord]:
    started = time.monotonic()
    events, members, excluded = inputs
    cols = scorer_sparse.columns_from_events(
        events, members, excluded, rule_set, as_of=as_of, ctx=ctx
    )
    sparse = scorer_sparse.score_sparse(cols, rule_set, as_of=as_of, ctx=ctx)
    state.sparse[ctx] = sparse
    records = list(sparse.records().values())
    log.info(
        "scored %s: %d DIDs as of %s in %.2fs",
        ctx,
        len(records),
        as_of,
        time.monotonic() - started,
    )
    return records


def _enqueue(
    session: Session, rt: Runtime, rule_set: RuleSet, rows: Sequence[store.ScoreRow]
) -> int:
    qualifying = _qualifies(rule_set)
    now = rt.clock.now()
    due = [
        store.CapabilityQueueRow(
            id=new_id("cap"),
            rule_set_id=rule_set.id,
            subject_did=row.did,
            ctx=row.ctx,
            tier=row.tier,
            reason_hash=capability_reason(rule_set.id, row.did, row.ctx, row.tier),
            created_at=now,
            issued_at=None,
            credential_ref=None,
        )
        for row in rows
        if row.tier is not None and row.tier in qualifying
    ]
    return store.enqueue_capabilities(session, due)


# --- bundles -----------------------------------------------------------------------------


class ScoreNotFound(NotFoundError, ReputationError):
    """No score for that DID and context (an unknown DID, context or a malformed one: the
    same answer, no oracle)."""

    code = "reputation.score_not_found"
    title = "Not found"


def _salts(rt: Runtime, record_hash: str) -> dict[str, str]:
    """Each hidden value's salt (the factors, score, tier, diversity): HMAC of the record
    hash and the name under the platform's pepper, so a salt is stable for a record and new
    for the next."""
    return {
        f: b64url_encode(rt.vault.kms.hmac(f"{record_hash}\x00{f}".encode(), label="score-salt"))
        for f in SALTED
    }


MAX_BUNDLE_INPUTS: Final = 5_000
"""A bundle's inputs (events and memberships) at most: a subject whose neighbourhood is
larger gets ``reputation.bundle_too_large`` instead of a bundle."""


class BundleTooLarge(ConflictError, ReputationError):
    """The subject's neighbourhood has more inputs than a bundle carries."""

    code = "reputation.bundle_too_large"
    title = "Score bundle too large"


def _neighbourhood(
    session: Session, row: store.ScoreRow, rule_set: RuleSet
) -> tuple[list[ReputationEventRow], dict[str, tuple[int, str]]]:
    """The events a record of ``row.did`` depends on, and their leaves: the vouches
    received by every DID fewer than ``iterations`` vouch-hops upstream of it, and the
    reports received by every DID up to ``iterations`` hops (round 0 needs R) — sequenced
    below the record's checkpoint, issued on or before its day, between DIDs not excluded
    at that checkpoint.  Read hop by hop through
    the recipient index, never the whole context.  Raises :class:`BundleTooLarge`."""
    picked: dict[str, ReputationEventRow] = {}
    leaves: dict[str, tuple[int, str]] = {}
    excluded = excluded_below(session, row.checkpoint_size)
    frontier, seen = {row.did}, {row.did}
    for depth in range(rule_set.iterations + 1):
        rows = store.events_received(session, sorted(frontier), row.ctx)
        found = ledger_service.leaf_indices(session, [e.event_id for e in rows])
        upstream: set[str] = set()
        for e in rows:
            leaf = found.get(e.event_id)
            if leaf is None or leaf[0] >= row.checkpoint_size or e.sender == e.recipient:
                continue
            if e.sender in excluded or e.recipient in excluded:
                continue
            if utc(e.issued_at).date() > row.as_of:
                continue
            if e.type == "report" or depth < rule_set.iterations:
                picked[e.cid], leaves[e.event_id] = e, leaf
            if e.type == "vouch" and e.sender not in seen:
                upstream.add(e.sender)
        if len(picked) > MAX_BUNDLE_INPUTS:
            raise BundleTooLarge(f"more than {MAX_BUNDLE_INPUTS} inputs")
        seen |= upstream
        frontier = upstream
    return sorted(picked.values(), key=lambda e: e.cid), leaves


def _proved(
    session: Session, item: JsonObject, event_id: str, leaves: dict[str, tuple[int, str]], size: int
) -> JsonObject:
    index, entry = leaves[event_id]
    proof = ledger_service.inclusion_proof(session, index, size)
    row = session.get(EventRow, event_id)
    if row is None:  # pragma: no cover - a sequenced event always has its row
        raise ScoreNotFound("no such score")
    document = event_document(RecordedEvent.from_row(row))
    return {
        **item,
        "leafIndex": index,
        "entry": entry,
        "inclusionProof": proof.proof,
        "event": document,
    }


def _sign_statement(session: Session, rt: Runtime, statement: JsonObject) -> str:
    """The platform's score statement: a compact JWS (``reputation-score+jwt``) by the
    ``reputation-scores`` key over ``statement``, ``iss`` and ``iat``."""
    signer = key_service.platform_signer(session, rt, _SCORES_KEY)
    return sign_compact(
        {"typ": STATEMENT_TYP, "kid": signer.kid},
        {"iss": rt.settings.public_url, "iat": int(rt.clock.now().timestamp()), **statement},
        signer,
    )


def _build_bundle(session: Session, rt: Runtime, row: store.ScoreRow, log_vkey: str) -> bytes:
    stored = get_rule_set(session, rt, row.rule_set_id, row.rule_set_version)
    rule_set = stored.rule_set
    checkpoint = ledger_service.checkpoint_of_size(session, row.checkpoint_size)
    if checkpoint is None:  # pragma: no cover - checkpoints are never deleted
        raise ScoreNotFound("no such score")
    size = row.checkpoint_size
    used, leaves = _neighbourhood(session, row, rule_set)
    dids = {row.did} | {e.sender for e in used} | {e.recipient for e in used}
    member_rows = store.members_of(session, sorted(dids))
    leaves.update(ledger_service.leaf_indices(session, [m.event_id for m in member_rows]))
    member_rows = [m for m in member_rows if m.event_id in leaves and leaves[m.event_id][0] < size]
    if len(used) + len(member_rows) > MAX_BUNDLE_INPUTS:
        raise BundleTooLarge(f"more than {MAX_BUNDLE_INPUTS} inputs")
    events = [
        _proved(
            session,
            {"cid": e.cid, "blob": b64url_encode(store_blob(session, e.cid))},
            e.event_id,
            leaves,
            size,
        )
        for e in used
    ]
    members = [
        _proved(
            session,
            {
                "did": m.did,
                "kyc": m.kyc,
                "since": m.since.isoformat(),
                "revokedOn": iso_day(day_of(m.revoked_at)),
                "suspendedOn": iso_day(day_of(m.suspended_at)),
                "credentialSha256": m.credential_sha256,
                "issuer": m.issuer,
                "vct": m.vct,
            },
            m.event_id,
            leaves,
            size,
        )
        for m in member_rows
    ]
    record = json.loads(row.record)
    statement = score_statement(
        record,
        record_hash=row.record_hash,
        checkpoint_size=size,
        checkpoint_root=bytes(row.checkpoint_root),
        event_cids=[e.cid for e in used],
        member_event_ids=[m.event_id for m in member_rows],
    )
    bundle = {
        "format": BUNDLE_FORMAT,
        "record": public_record(record, _salts(rt, row.record_hash)),
        "recordHash": row.record_hash,
        "statement": _sign_statement(session, rt, statement),
        "scoresJwks": {"keys": [v.jwk() for v in score_statement_keys(session, rt)]},
        "asOf": row.as_of.isoformat(),
        "ruleSet": {"token": stored.view.token, "hash": rule_set.hash},
        "rulesJwks": {"keys": [v.jwk() for v in rule_set_keys(session, rt)]},
        "checkpoint": ledger_service.checkpoint_with_cosignatures(session, checkpoint),
        "logKey": log_vkey,
        "events": events,
        "members": members,
    }
    return canonical_json(bundle)


def store_blob(session: Session, cid: str) -> bytes:
    """The blob of an accepted event (stored with it)."""
    body = events_store.blob(session, cid)
    if body is None:  # pragma: no cover - stored in the same transaction as the event
        raise ScoreNotFound("no such score")
    return body


def score_bundle(
    session: Session,
    rt: Runtime,
    *,
    did: str,
    ctx: str,
    subject: bool,
    build_with: str | None = None,
) -> bytes | None:
    """The score bundle of ``did`` in ``ctx`` (see :mod:`scores_bundle`), never assembled
    here: a fetch is one primary-key read.  ``None`` while the record has no bundle yet —
    the fetch marks it requested (``session`` must be able to write) and
    :func:`build_requested_bundles` assembles it off the request path.  ``subject`` (the
    caller proved to be the DID) adds the factor values and their salts.  ``build_with``
    (the log's verifier key; the operator's CLI, never a route) assembles a missing bundle
    in place instead.  Returns the bundle's RFC 8785 bytes.  Raises :class:`ScoreNotFound`
    and :class:`BundleTooLarge`."""
    row = store.score_row(session, did, ctx)
    if row is None:
        raise ScoreNotFound("no such score")
    body = row.bundle
    if body is None:
        if row.bundle_refused is not None:
            raise BundleTooLarge(f"more than {MAX_BUNDLE_INPUTS} inputs")
        if build_with is None:
            store.request_bundle(session, row, rt.clock.now())
            return None
        body = _build_bundle(session, rt, row, build_with)
        store.set_bundle(session, did, ctx, row.record_hash, body)
    if not subject:
        return body
    bundle: JsonObject = json.loads(body)
    bundle["record"] = json.loads(row.record)
    bundle["factorSalts"] = _salts(rt, row.record_hash)
    return canonical_json(bundle)


BUNDLES_PER_PASS: Final = 50
"""Requested bundles one :func:`build_requested_bundles` pass assembles at most."""


def build_requested_bundles(
    rt: Runtime, *, log_vkey: str, limit: int = BUNDLES_PER_PASS
) -> dict[str, int]:
    """Assemble up to ``limit`` requested bundles, oldest request first, each in its own
    transaction, and keep each with its record; a record too large for a bundle keeps the
    refusal instead (``reputation.bundle_too_large`` on fetch).  A record rescored
    between the read and its build is left for the next pass (still requested).  Returns the counts
    (``built``, ``refused``)."""
    with rt.sessions() as session:
        requested = store.requested_bundles(session, limit)
    counts = {"built": 0, "refused": 0}
    for did, ctx, record_hash in requested:
        with transaction(rt.sessions) as session:
            row = store.score_row(session, did, ctx)
            if row is None or row.record_hash != record_hash or row.bundle is not None:
                continue
            try:
                body = _build_bundle(session, rt, row, log_vkey)
            except BundleTooLarge as e:
                store.refuse_bundle(session, did, ctx, record_hash, e.code)
                counts["refused"] += 1
                continue
            store.set_bundle(session, did, ctx, record_hash, body)
            counts["built"] += 1
    return counts
