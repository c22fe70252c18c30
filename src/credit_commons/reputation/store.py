"""The reputation domain's reads and writes of its own tables (``models``); the service
composes them in the caller's unit of work."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from credit_commons.reputation.models import (
    ReputationBlobRow,
    ReputationEventRow,
    ReputationExclusionRow,
    ReputationMemberRow,
)

__all__ = [
    "add_event",
    "add_exclusion",
    "add_member",
    "blob",
    "event_by_cid",
    "exclusion",
    "exclusions",
    "is_known",
    "kyc_memberships",
    "lock_member",
    "lock_memberships",
    "member_row",
    "memberships",
    "replay_and_budget",
    "unrevoked_memberships",
]


def lock_memberships(session: Session, did: str) -> list[ReputationMemberRow]:
    """Every membership row of ``did``, locked until the transaction ends (PostgreSQL
    ``FOR UPDATE``; SQLite writers are serialised already): two events of one sender are
    judged one after the other, so a budget cannot be overrun by concurrent requests."""
    query = (
        select(ReputationMemberRow)
        .where(ReputationMemberRow.did == did)
        .order_by(ReputationMemberRow.id)
        .with_for_update()
    )
    return list(session.scalars(query))


def memberships(session: Session, did: str) -> list[ReputationMemberRow]:
    """Every membership row of ``did`` (unlocked: for reads)."""
    query = (
        select(ReputationMemberRow)
        .where(ReputationMemberRow.did == did)
        .order_by(ReputationMemberRow.id)
    )
    return list(session.scalars(query))


def kyc_memberships(
    rows: list[ReputationMemberRow],
    at: datetime,
    kyc: tuple[frozenset[str], frozenset[str]] | None = None,
) -> list[ReputationMemberRow]:
    """The KYC rows among ``rows`` that are not revoked at ``at``.  With ``kyc`` (the rule
    set in effect's credential types and trusted issuers) a row is KYC by that rule set, not
    by the one it registered under: a type or issuer a later rule set drops no longer
    unlocks, and one it adds does."""
    if kyc is None:
        chosen = [r for r in rows if r.kyc]
    else:
        types, issuers = kyc
        chosen = [r for r in rows if r.vct in types and r.issuer in issuers]
    return [
        r
        for r in chosen
        if (r.revoked_at is None or _after(r.revoked_at, at))
        and (r.suspended_at is None or _after(r.suspended_at, at))
    ]


def _after(ended_at: datetime, at: datetime) -> bool:
    if ended_at.tzinfo is None:  # SQLite returns naive UTC
        return ended_at > at.replace(tzinfo=None)
    return ended_at > at


def replay_and_budget(
    session: Session,
    sender: str,
    *,
    nonce: str,
    ctx: str,
    epoch: str,
    kind: str,
    recipient: str = "",
) -> tuple[bool, int, frozenset[str]]:
    """In one query: whether an event of ``sender`` with ``nonce`` was accepted, how many
    events of ``kind`` ``sender`` had accepted in ``ctx`` and ``epoch``, and which of
    ``sender`` and ``recipient`` are excluded (``reputation_exclusions``)."""
    e = ReputationEventRow
    x = ReputationExclusionRow
    used = select(e.cid).where(e.sender == sender, e.nonce == nonce).exists()
    counted = (
        select(func.count())
        .where(e.sender == sender, e.ctx == ctx, e.epoch == epoch, e.type == kind)
        .scalar_subquery()
    )
    sender_gone = select(x.did).where(x.did == sender).exists()
    recipient_gone = select(x.did).where(x.did == recipient).exists()
    row = session.execute(select(used, counted, sender_gone, recipient_gone)).one()
    gone = frozenset(d for d, flag in ((sender, row[2]), (recipient, row[3])) if flag)
    return bool(row[0]), int(row[1] or 0), gone


def event_by_cid(session: Session, cid: str) -> ReputationEventRow | None:
    """The accepted event with that CID, if any."""
    return session.get(ReputationEventRow, cid)


def add_event(session: Session, values: dict[str, object], body: bytes) -> None:
    """Insert an accepted event (``values``: its row's columns) and its blob; a duplicate
    fails here (Core inserts: the rows are plain values, the ORM's unit of work would only
    cost time on the submission path)."""
    session.execute(insert(ReputationEventRow), [values])
    session.execute(insert(ReputationBlobRow), [{"cid": values["cid"], "body": body}])


def blob(session: Session, cid: str) -> bytes | None:
    """The bytes ``cid`` addresses, if stored."""
    body = session.scalar(select(ReputationBlobRow.body).where(ReputationBlobRow.cid == cid))
    return None if body is None else bytes(body)


def member_by_event(session: Session, event_id: str) -> ReputationMemberRow | None:
    """The row its ``reputation.member`` spine event recorded, if any."""
    query = select(ReputationMemberRow).where(ReputationMemberRow.event_id == event_id)
    return session.scalar(query)


def member_row(session: Session, did: str, credential_sha256: str) -> ReputationMemberRow | None:
    """The row of ``did`` registered with that credential, if any."""
    query = select(ReputationMemberRow).where(
        ReputationMemberRow.did == did,
        ReputationMemberRow.credential_sha256 == credential_sha256,
    )
    return session.scalar(query)


def add_member(session: Session, row: ReputationMemberRow) -> None:
    """Add a membership row (flushed)."""
    session.add(row)
    session.flush()


def exclusion(session: Session, did: str) -> ReputationExclusionRow | None:
    """The exclusion of ``did``, if it is excluded."""
    return session.get(ReputationExclusionRow, did)


def exclusions(session: Session) -> list[ReputationExclusionRow]:
    """Every excluded DID's row, in DID order."""
    return list(
        session.scalars(select(ReputationExclusionRow).order_by(ReputationExclusionRow.did))
    )


def add_exclusion(session: Session, row: ReputationExclusionRow) -> None:
    """Add an exclusion row (flushed)."""
    session.add(row)
    session.flush()


def is_known(session: Session, did: str) -> bool:
    """Whether ``did`` registered a membership or sent or received an accepted event."""
    m, e = ReputationMemberRow, ReputationEventRow
    query = select(
        select(m.id).where(m.did == did).exists(),
        select(e.cid).where(e.sender == did).exists(),
        select(e.cid).where(e.recipient == did).exists(),
    )
    return any(session.execute(query).one())


def unrevoked_memberships(session: Session) -> list[ReputationMemberRow]:
    """Every membership row not revoked (suspended ones included: a reinstatement is read
    at the same status reference) of a DID not excluded, in id order."""
    gone = select(ReputationExclusionRow.did).where(
        ReputationExclusionRow.did == ReputationMemberRow.did
    )
    query = (
        select(ReputationMemberRow)
        .where(ReputationMemberRow.revoked_at.is_(None), ~gone.exists())
        .order_by(ReputationMemberRow.id)
    )
    return list(session.scalars(query))


def lock_member(session: Session, member_id: str) -> ReputationMemberRow | None:
    """The membership row ``member_id``, locked until the transaction ends (PostgreSQL
    ``FOR UPDATE``), read afresh from the database."""
    query = (
        select(ReputationMemberRow)
        .where(ReputationMemberRow.id == member_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalar(query)
