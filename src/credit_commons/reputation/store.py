"""The reputation domain's reads and writes of its own tables (``models``); the service
composes them in the caller's unit of work."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select
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
    "event_by_cid",
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
    return [r for r in chosen if r.revoked_at is None or _after(r.revoked_at, at)]


def _after(revoked_at: datetime, at: datetime) -> bool:
    if revoked_at.tzinfo is None:  # SQLite returns naive UTC
        return revoked_at > at.replace(tzinfo=None)
    return revoked_at > at


def replay_and_budget(
    session: Session, sender: str, *, nonce: str, ctx: str, epoch: str, kind: str
) -> tuple[bool, int]:
    """In one query: whether an event of ``sender`` with ``nonce`` was accepted, and how
    many events of ``kind`` ``sender`` had accepted in ``ctx`` and ``epoch``."""
    e = ReputationEventRow
    used = select(e.cid).where(e.sender == sender, e.nonce == nonce).exists()
    counted = (
        select(func.count())
        .where(e.sender == sender, e.ctx == ctx, e.epoch == epoch, e.type == kind)
        .scalar_subquery()
    )
    row = session.execute(select(used, counted)).one()
    return bool(row[0]), int(row[1] or 0)


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


def unrevoked_memberships(session: Session) -> list[ReputationMemberRow]:
    """Every membership row not revoked, in id order."""
    query = (
        select(ReputationMemberRow)
        .where(ReputationMemberRow.revoked_at.is_(None))
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
