"""What a scoring pass reads (``scores_service``): the scorer's view of accepted event rows
and membership rows, and the DIDs excluded at a checkpoint."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.encoding import canonical_json, sha256_hex
from credit_commons.ledger import service as ledger_service
from credit_commons.reputation import scorer_sparse
from credit_commons.reputation import store as events_store
from credit_commons.reputation.models import ReputationEventRow, ReputationMemberRow
from credit_commons.reputation.rules import RuleSet
from credit_commons.reputation.scorer import ScoreRecord, ScoringEvent, ScoringMember
from credit_commons.reputation.scores_bundle import attestation_count, is_kyc

__all__ = [
    "Membership",
    "day_of",
    "excluded_below",
    "iso_day",
    "members_digest",
    "members_of_memberships",
    "score_contexts",
    "scoring_events",
    "scoring_members",
]


def scoring_events(rows: Iterable[ReputationEventRow]) -> list[ScoringEvent]:
    """The scorer's view of accepted event rows."""
    return [
        ScoringEvent(
            type="vouch" if r.type == "vouch" else "report",
            sender=r.sender,
            subject=r.recipient,
            ctx=r.ctx,
            issued_at=utc(r.issued_at),
            cid=r.cid,
        )
        for r in rows
    ]


def day_of(at: datetime | None) -> date | None:
    """The UTC day of ``at`` (``None`` for ``None``)."""
    return None if at is None else utc(at).date()


def iso_day(day: date | None) -> str | None:
    """``day`` in ISO form (``None`` for ``None``)."""
    return None if day is None else day.isoformat()


def _ended(row: ReputationMemberRow) -> date | None:
    """The day a membership row stopped counting: the earlier of its revocation and the
    start of its current suspension (a reinstated row has none); ``None`` while it
    counts."""
    days = [d for d in (day_of(row.revoked_at), day_of(row.suspended_at)) if d is not None]
    return min(days) if days else None


@dataclass(frozen=True, slots=True)
class Membership:
    """One credential a DID registered with, as scoring sees it: its issuer and type, the
    day it was recorded, and the day it stopped counting (the earlier of its revocation and
    the start of its current suspension; ``None`` while it counts)."""

    did: str
    issuer: str
    vct: str
    since: date
    ended: date | None


def scoring_members(rows: Iterable[ReputationMemberRow], rule_set: RuleSet) -> list[ScoringMember]:
    """One :class:`ScoringMember` per DID from its membership rows
    (:func:`members_of_memberships`)."""
    return members_of_memberships(
        (Membership(r.did, r.issuer, r.vct, r.since, _ended(r)) for r in rows), rule_set
    )


def members_of_memberships(
    memberships: Iterable[Membership], rule_set: RuleSet
) -> list[ScoringMember]:
    """One :class:`ScoringMember` per DID from its memberships: member since its first
    KYC registration (its first registration if none is KYC), KYC while a KYC membership
    still counts (neither revoked nor suspended; ended on the latest end once all have
    ended: a suspension pauses membership until the credential is reinstated), and its
    attestations: the distinct (issuer, vct) of its non-KYC memberships that still count,
    the rule set's own output credential (``aura.outputCredentialType``, the platform's
    capability credential) not counted — a score must not feed on itself.  A membership is
    KYC by ``rule_set``'s credential types and trusted issuers, not by the flag stored when
    it registered (a type or issuer a later rule set drops no longer counts), as the event
    route, the offline verify and a full node's scorer do.
    """
    by_did: dict[str, list[Membership]] = {}
    for m in memberships:
        by_did.setdefault(m.did, []).append(m)
    out = []
    for did, mine in sorted(by_did.items()):
        kyc = [m for m in mine if is_kyc(m.issuer, m.vct, rule_set)]
        since = min(m.since for m in (kyc or mine))
        revoked: date | None = None
        if kyc and all(m.ended is not None for m in kyc):
            revoked = max(m.ended for m in kyc if m.ended is not None)
        attestations = attestation_count(
            (
                (m.issuer, m.vct)
                for m in mine
                if not is_kyc(m.issuer, m.vct, rule_set) and m.ended is None
            ),
            rule_set,
        )
        out.append(
            ScoringMember(
                did=did, since=since, kyc=bool(kyc), revoked_on=revoked, attestations=attestations
            )
        )
    return out


def score_contexts(
    events: Sequence[ScoringEvent],
    members: Sequence[ScoringMember],
    excluded: frozenset[str],
    rule_set: RuleSet,
    *,
    as_of: date,
) -> dict[tuple[str, str], ScoreRecord]:
    """Every record in every context ``rule_set`` allows, recomputed in full by the sparse
    scorer, as a scoring pass does (``scores_service``): ``(did, ctx)`` → record."""
    out: dict[tuple[str, str], ScoreRecord] = {}
    for ctx in rule_set.contexts:
        cols = scorer_sparse.columns_from_events(
            events, members, excluded, rule_set, as_of=as_of, ctx=ctx
        )
        sparse = scorer_sparse.score_sparse(cols, rule_set, as_of=as_of, ctx=ctx)
        for did, record in sparse.records().items():
            out[(did, ctx)] = record
    return out


def members_digest(rows: Sequence[ReputationMemberRow]) -> str:
    """A digest of the membership rows (what the cursor records)."""
    listed = [
        [
            r.id,
            r.did,
            r.kyc,
            r.since.isoformat(),
            None if r.revoked_at is None else utc(r.revoked_at).isoformat(),
            None if r.suspended_at is None else utc(r.suspended_at).isoformat(),
        ]
        for r in rows
    ]
    return sha256_hex(canonical_json(sorted(listed)))


def excluded_below(session: Session, size: int) -> frozenset[str]:
    """The DIDs excluded from scoring at checkpoint ``size``: those whose
    ``reputation.excluded`` spine event is a log leaf below it."""
    rows = events_store.exclusions(session)
    if not rows:
        return frozenset()
    leaves = ledger_service.leaf_indices(session, [r.event_id for r in rows])
    return frozenset(r.did for r in rows if r.event_id in leaves and leaves[r.event_id][0] < size)
