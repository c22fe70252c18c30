"""The reputation domain's reads and writes of its own tables (``models``); the service
composes them in the caller's unit of work."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from credit_commons.reputation.models import (
    ReputationBlobRow,
    ReputationEventRow,
    ReputationMemberRow,
)

__all__ = [
    "add_event",
    "add_member",
    "blob",
    "budget_used",
    "event_by_cid",
    "kyc_memberships",
    "lock_memberships",
    "member_row",
    "memberships",
    "nonce_used",
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


def kyc_memberships(rows: list[ReputationMemberRow], at: datetime) -> list[ReputationMemberRow]:
    """The KYC rows among ``rows`` that are not revoked at ``at``."""
    return [r for r in rows if r.kyc and (r.revoked_at is None or _after(r.revoked_at, at))]


def _after(revoked_at: datetime, at: datetime) -> bool:
    if revoked_at.tzinfo is None:  # SQLite returns naive UTC
        return revoked_at > at.replace(tzinfo=None)
    return revoked_at > at


def nonce_used(session: Session, sender: str, nonce: str) -> bool:
    """Whether an event of ``sender`` with ``nonce`` was accepted."""
    query = select(ReputationEventRow.cid).where(
        ReputationEventRow.sender == sender, ReputationEventRow.nonce == nonce
    )
    return session.scalar(query) is not None


def budget_used(session: Session, sender: str, ctx: str, epoch: str, kind: str) -> int:
    """How many events of ``kind`` ``sender`` had accepted in ``ctx`` and ``epoch``."""
    query = select(func.count()).where(
        ReputationEventRow.sender == sender,
        ReputationEventRow.ctx == ctx,
        ReputationEventRow.epoch == epoch,
        ReputationEventRow.type == kind,
    )
    return int(session.scalar(query) or 0)


def event_by_cid(session: Session, cid: str) -> ReputationEventRow | None:
    """The accepted event with that CID, if any."""
    return session.get(ReputationEventRow, cid)


def add_event(session: Session, row: ReputationEventRow, body: bytes) -> None:
    """Add an accepted event and its blob (flushed, so a duplicate fails here)."""
    session.add(row)
    session.add(ReputationBlobRow(cid=row.cid, body=body))
    session.flush()


def blob(session: Session, cid: str) -> bytes | None:
    """The bytes ``cid`` addresses, if stored."""
    body = session.scalar(select(ReputationBlobRow.body).where(ReputationBlobRow.cid == cid))
    return None if body is None else bytes(body)


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
