"""Capability credentials (issue 19): what the issuing step needs from reputation's queue.

The scoring pass (``scores_service``) queues one row per (rule set, subject, reason) when a
subject's tier reaches the rule set's ``minTierForCredential``.  The step that issues the
credential needs both the issuer and reputation, so it is composed above them
(``jobs.capability_step``); these are the reputation side's functions it calls, all in the
caller's transaction:

- :func:`pending_capabilities`: rows not issued yet, oldest first, each with the subject's
  current cached score record in that context (whether it still holds the queued tier);
- :func:`claim_capability`: a conditional update (``issued_at`` set where it is NULL) that
  only one transaction can win — the others see 0 rows, so a row is issued once even with
  two workers (PostgreSQL's row lock holds the loser until the winner commits);
- :func:`record_capability_credential`: the credential's reference on the claimed row;
- :func:`kyc_status_refs`: the status references of the subject's active KYC memberships
  (how the step finds whom the platform issued the KYC credential to);
- :func:`issued_capabilities`: the credentials issued to a DID in a context (the holder's
  pickup, ``GET /v1/reputation/capabilities``);
- :func:`community_tier`: the tier a DID holds a capability credential for (the newest
  issued), for the Credit Readiness Credential's ``community_tier`` claim.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from credit_commons.formats.jws import sign_compact
from credit_commons.keys import PrivateKey
from credit_commons.reputation.models import ReputationMemberRow
from credit_commons.reputation.scores_store import CapabilityQueueRow, ScoreRow

__all__ = [
    "CommunityTier",
    "PendingCapability",
    "claim_capability",
    "community_tier",
    "issued_capabilities",
    "kyc_status_refs",
    "pending_capabilities",
    "pending_count",
    "record_capability_credential",
    "sign_subject_proof",
    "sign_tombstone",
]

#: The ``typ`` of the subject's request proof (the score bundle's, ``scores_bundle``).
_PROOF_TYP = "score-request+jwt"


def sign_subject_proof(key: PrivateKey, *, did: str, ctx: str, audience: str, iat: int) -> str:
    """The holder's proof that a request for ``did``'s score or capability credentials in
    ``ctx`` comes from the DID (``Subject-Proof``): a ``score-request+jwt`` JWS signed by
    ``key``, the platform ``audience``, issued at ``iat`` (seconds)."""
    return sign_compact(
        {"typ": _PROOF_TYP}, {"sub": did, "ctx": ctx, "aud": audience, "iat": iat}, key
    )


def sign_tombstone(key: PrivateKey, *, did: str, audience: str, iat: int) -> str:
    """The holder's request that ``did`` be left out of scoring for good (``POST
    /v1/reputation/members/tombstone``): a ``reputation-tombstone+jwt`` JWS signed by
    ``key``, the platform ``audience``, issued at ``iat`` (seconds)."""
    return sign_compact(
        {"typ": "reputation-tombstone+jwt"}, {"sub": did, "aud": audience, "iat": iat}, key
    )


@dataclass(frozen=True, slots=True)
class PendingCapability:
    """A queued capability credential not issued yet, with the subject's current record in
    its context: ``current`` is False when there is no record any more or its tier (or rule
    set) is no longer the queued one — the credential would certify what no longer holds."""

    id: str
    did: str
    ctx: str
    tier: str
    rule_set_id: str
    current: bool
    rule_set_version: int = 0
    rule_set_hash: str = ""
    as_of: date | None = None
    score_micro: int = 0


@dataclass(frozen=True, slots=True)
class CommunityTier:
    """The tier a DID holds a capability credential for: which tier, in which context, under
    which rule set (``{"id", "version", "hash"}``), as of which day."""

    tier: str
    ctx: str
    rule_set: dict[str, str | int]
    as_of: date

    def claim(self) -> dict[str, object]:
        """The Credit Readiness Credential's ``community_tier`` claim."""
        return {
            "tier": self.tier,
            "ctx": self.ctx,
            "rule_set": dict(self.rule_set),
            "as_of": self.as_of.isoformat(),
        }


def _micro(text: str) -> int:
    # A record's quantity ("31.250000", exactly six decimals, scorer.micro_string) in micro.
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("-").partition(".")
    return sign * (int(whole) * 1_000_000 + int(frac))


def pending_capabilities(
    session: Session, *, limit: int = 100, after: str | None = None
) -> list[PendingCapability]:
    """Up to ``limit`` rows not issued yet, oldest first (ids are time-ordered), each with the
    subject's current score record in its context; with ``after``, only rows whose id sorts
    after it — the caller's round-robin cursor, so rows that stay queued (stale, unaddressed,
    refused) cannot hold the page against newer ones."""
    query = (
        select(CapabilityQueueRow, ScoreRow)
        .outerjoin(
            ScoreRow,
            (ScoreRow.did == CapabilityQueueRow.subject_did)
            & (ScoreRow.ctx == CapabilityQueueRow.ctx),
        )
        .where(CapabilityQueueRow.issued_at.is_(None))
        .order_by(CapabilityQueueRow.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(CapabilityQueueRow.id > after)
    out: list[PendingCapability] = []
    for queued, score in session.execute(query).all():
        ids = (queued.id, queued.subject_did, queued.ctx, queued.tier, queued.rule_set_id)
        if score is None or score.tier != queued.tier or score.rule_set_id != queued.rule_set_id:
            out.append(PendingCapability(*ids, current=False))
            continue
        record = json.loads(bytes(score.record))
        out.append(
            PendingCapability(
                *ids,
                current=True,
                rule_set_version=score.rule_set_version,
                rule_set_hash=score.rule_set_hash,
                as_of=score.as_of,
                score_micro=_micro(str(record["score"])),
            )
        )
    return out


def claim_capability(session: Session, capability_id: str, at: datetime) -> bool:
    """Mark the row issued at ``at`` unless it already is; whether this transaction won it."""
    result = session.execute(
        update(CapabilityQueueRow)
        .where(CapabilityQueueRow.id == capability_id, CapabilityQueueRow.issued_at.is_(None))
        .values(issued_at=at)
    )
    return bool(getattr(result, "rowcount", 0))


def record_capability_credential(session: Session, capability_id: str, reference: str) -> None:
    """Keep the issued credential's reference (its id in the issuer's registry) on the row."""
    session.execute(
        update(CapabilityQueueRow)
        .where(CapabilityQueueRow.id == capability_id)
        .values(credential_ref=reference)
    )


def issued_capabilities(session: Session, did: str, ctx: str) -> list[tuple[str, str]]:
    """The (tier, credential reference) of every capability credential issued to ``did`` in
    ``ctx``, oldest first."""
    query = (
        select(CapabilityQueueRow.tier, CapabilityQueueRow.credential_ref)
        .where(
            CapabilityQueueRow.subject_did == did,
            CapabilityQueueRow.ctx == ctx,
            CapabilityQueueRow.credential_ref.is_not(None),
        )
        .order_by(CapabilityQueueRow.issued_at, CapabilityQueueRow.id)
    )
    return [(tier, ref) for tier, ref in session.execute(query).all() if ref is not None]


def kyc_status_refs(session: Session, did: str) -> list[str]:
    """The status references (``uri#idx``) of ``did``'s KYC memberships not revoked, newest
    first."""
    query = (
        select(ReputationMemberRow.status_ref)
        .where(
            ReputationMemberRow.did == did,
            ReputationMemberRow.kyc.is_(True),
            ReputationMemberRow.revoked_at.is_(None),
            ReputationMemberRow.status_ref.is_not(None),
        )
        .order_by(ReputationMemberRow.registered_at.desc(), ReputationMemberRow.id)
    )
    return [ref for ref in session.scalars(query) if ref]


def community_tier(session: Session, did: str) -> CommunityTier | None:
    """The tier of the newest capability credential issued to ``did`` whose record still
    holds it (the cached record in that context names the same tier and rule set), or
    ``None``."""
    query = (
        select(CapabilityQueueRow, ScoreRow)
        .join(
            ScoreRow,
            (ScoreRow.did == CapabilityQueueRow.subject_did)
            & (ScoreRow.ctx == CapabilityQueueRow.ctx)
            & (ScoreRow.tier == CapabilityQueueRow.tier)
            & (ScoreRow.rule_set_id == CapabilityQueueRow.rule_set_id),
        )
        .where(
            CapabilityQueueRow.subject_did == did,
            CapabilityQueueRow.credential_ref.is_not(None),
        )
        .order_by(CapabilityQueueRow.issued_at.desc(), CapabilityQueueRow.id)
        .limit(1)
    )
    found = session.execute(query).first()
    if found is None:
        return None
    queued, score = found
    return CommunityTier(
        tier=queued.tier,
        ctx=queued.ctx,
        rule_set={
            "id": score.rule_set_id,
            "version": score.rule_set_version,
            "hash": score.rule_set_hash,
        },
        as_of=score.as_of,
    )


def pending_count(session: Session, cap: int) -> int:
    """Queued capability credentials not issued yet, counted up to ``cap`` (a bounded read
    for ``/metrics``)."""
    waiting = select(CapabilityQueueRow.id).where(CapabilityQueueRow.issued_at.is_(None)).limit(cap)
    return int(session.scalar(select(func.count()).select_from(waiting.subquery())) or 0)
