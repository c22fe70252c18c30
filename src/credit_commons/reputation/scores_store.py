"""The tables of computed scores and their queries (``reputation/scores_service.py`` is the
only writer): the cached score record per (DID, context), the scoring cursor, and the
capability queue (migration 0040)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
    delete,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from credit_commons.core.db import Base
from credit_commons.reputation.models import ReputationEventRow, ReputationMemberRow

__all__ = [
    "CapabilityQueueRow",
    "ScoreCursorRow",
    "ScoreRow",
    "cursor",
    "enqueue_capabilities",
    "events_by_spine_ids",
    "events_of",
    "events_received",
    "members",
    "members_of",
    "queue_rows",
    "refuse_bundle",
    "replace_scores",
    "request_bundle",
    "requested_bundles",
    "score_row",
    "set_bundle",
    "set_cursor",
    "upsert_scores",
]


class ScoreRow(Base):
    """The score record of ``did`` in ``ctx`` as of a signed checkpoint: its JCS bytes and
    SHA-256, the checkpoint's size and root, the rule set it was scored under, and the
    bundle (``GET /v1/scores``): requested by the first fetch (``bundle_requested_at``),
    assembled off the request path by a jobs step and kept until the record changes."""

    __tablename__ = "reputation_scores"

    did: Mapped[str] = mapped_column(String(128), primary_key=True)
    ctx: Mapped[str] = mapped_column(String(98), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    checkpoint_size: Mapped[int] = mapped_column(BigInteger)
    checkpoint_root: Mapped[bytes] = mapped_column(LargeBinary)
    rule_set_id: Mapped[str] = mapped_column(String(64))
    rule_set_version: Mapped[int] = mapped_column(Integer)
    rule_set_hash: Mapped[str] = mapped_column(String(64))
    record: Mapped[bytes] = mapped_column(LargeBinary)
    record_hash: Mapped[str] = mapped_column(String(64))
    tier: Mapped[str | None] = mapped_column(String(64), nullable=True)
    bundle: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    bundle_requested_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    bundle_refused: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ScoreCursorRow(Base):
    """The one scoring cursor (``id`` 1): the checkpoint size scored last, its UTC day, the
    rule set's hash and the digest of the memberships scored.  Moved last, in the same
    transaction as the records, so a crash mid-way loses nothing."""

    __tablename__ = "reputation_score_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    checkpoint_size: Mapped[int] = mapped_column(BigInteger)
    as_of: Mapped[date] = mapped_column(Date)
    rule_set_hash: Mapped[str] = mapped_column(String(64))
    members_digest: Mapped[str] = mapped_column(String(64))
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CapabilityQueueRow(Base):
    """A capability credential due to a subject whose tier reached the rule set's
    ``minTierForCredential``: one row per (rule set, subject, reason), the reason hash being
    SHA-256(JCS{ruleSet, did, ctx, tier}); the issuer side fills ``issued_at`` and
    ``credential_ref``."""

    __tablename__ = "reputation_capability_queue"
    __table_args__ = (UniqueConstraint("rule_set_id", "subject_did", "reason_hash"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    rule_set_id: Mapped[str] = mapped_column(String(64))
    subject_did: Mapped[str] = mapped_column(String(128))
    ctx: Mapped[str] = mapped_column(String(98))
    tier: Mapped[str] = mapped_column(String(64))
    reason_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    credential_ref: Mapped[str | None] = mapped_column(String(1024), nullable=True)


_CHUNK = 1000
_queue: Table = CapabilityQueueRow.__table__  # type: ignore[assignment]
_scores: Table = ScoreRow.__table__  # type: ignore[assignment]


def cursor(session: Session) -> ScoreCursorRow | None:
    """The scoring cursor, if anything was scored."""
    return session.get(ScoreCursorRow, 1)


def set_cursor(
    session: Session,
    *,
    size: int,
    as_of: date,
    rule_set_hash: str,
    members_digest: str,
    at: datetime,
) -> None:
    """Move the cursor (flushed)."""
    row = session.get(ScoreCursorRow, 1)
    if row is None:
        row = ScoreCursorRow(id=1)
        session.add(row)
    row.checkpoint_size, row.as_of = size, as_of
    row.rule_set_hash, row.members_digest, row.scored_at = rule_set_hash, members_digest, at
    session.flush()


def events_of(session: Session, ctxs: Sequence[str]) -> list[ReputationEventRow]:
    """Every accepted event in ``ctxs``."""
    query = select(ReputationEventRow).where(ReputationEventRow.ctx.in_(list(ctxs)))
    return list(session.scalars(query))


def events_received(
    session: Session, recipients: Sequence[str], ctx: str
) -> list[ReputationEventRow]:
    """The accepted events of ``ctx`` received by ``recipients`` (the recipient index, read
    in chunks)."""
    out: list[ReputationEventRow] = []
    for start in range(0, len(recipients), _CHUNK):
        chunk = list(recipients[start : start + _CHUNK])
        query = select(ReputationEventRow).where(
            ReputationEventRow.recipient.in_(chunk), ReputationEventRow.ctx == ctx
        )
        out.extend(session.scalars(query))
    return out


def members_of(session: Session, dids: Sequence[str]) -> list[ReputationMemberRow]:
    """The membership rows of ``dids`` (the DID index, read in chunks), by id."""
    out: list[ReputationMemberRow] = []
    for start in range(0, len(dids), _CHUNK):
        chunk = list(dids[start : start + _CHUNK])
        out.extend(
            session.scalars(select(ReputationMemberRow).where(ReputationMemberRow.did.in_(chunk)))
        )
    return sorted(out, key=lambda m: m.id)


def events_by_spine_ids(session: Session, event_ids: Sequence[str]) -> list[ReputationEventRow]:
    """The accepted events recorded by those spine events (read in chunks)."""
    out: list[ReputationEventRow] = []
    for start in range(0, len(event_ids), _CHUNK):
        chunk = list(event_ids[start : start + _CHUNK])
        out.extend(
            session.scalars(
                select(ReputationEventRow).where(ReputationEventRow.event_id.in_(chunk))
            )
        )
    return out


def members(session: Session) -> list[ReputationMemberRow]:
    """Every membership row, by id."""
    return list(session.scalars(select(ReputationMemberRow).order_by(ReputationMemberRow.id)))


def _values(row: Base, table: Table) -> dict[str, object]:
    return {c.name: getattr(row, c.key) for c in table.columns}


def replace_scores(session: Session, ctx: str, rows: Sequence[ScoreRow]) -> None:
    """Replace every score of ``ctx`` with ``rows`` (a full recompute): one delete, then
    multi-row inserts of ``_CHUNK`` rows (no ORM objects kept in the session).  A bundle
    requested and not built yet stays requested for the new record of its DID."""
    session.flush()
    s = ScoreRow
    query = select(s.did, s.bundle_requested_at).where(
        s.bundle_requested_at.is_not(None), s.ctx == ctx
    )
    requested = {row.did: row.bundle_requested_at for row in session.execute(query)}
    for r in rows:
        r.bundle_requested_at = requested.get(r.did)
    session.execute(delete(ScoreRow).where(ScoreRow.ctx == ctx))
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        session.execute(insert(_scores), [_values(r, _scores) for r in chunk])


def upsert_scores(session: Session, rows: Iterable[ScoreRow]) -> None:
    """Insert or replace the scores of ``rows``' (DID, context) (flushed).  A bundle
    requested and not built yet stays requested for the new record."""
    for row in rows:
        row.bundle_requested_at = session.scalar(
            select(ScoreRow.bundle_requested_at).where(
                ScoreRow.did == row.did, ScoreRow.ctx == row.ctx
            )
        )
        session.merge(row)
    session.flush()


def score_row(session: Session, did: str, ctx: str) -> ScoreRow | None:
    """The cached score of ``did`` in ``ctx`` (one primary-key read)."""
    return session.get(ScoreRow, (did, ctx))


def set_bundle(session: Session, did: str, ctx: str, record_hash: str, bundle: bytes) -> None:
    """Keep an assembled bundle with its record (its request done), unless the record
    changed meanwhile."""
    row = session.get(ScoreRow, (did, ctx))
    if row is not None and row.record_hash == record_hash and row.bundle is None:
        row.bundle = bundle
        row.bundle_requested_at = None
        session.flush()


def refuse_bundle(session: Session, did: str, ctx: str, record_hash: str, code: str) -> None:
    """Record that the bundle of this record cannot be built (``code``; its request done),
    unless the record changed meanwhile."""
    row = session.get(ScoreRow, (did, ctx))
    if row is not None and row.record_hash == record_hash and row.bundle is None:
        row.bundle_refused = code
        row.bundle_requested_at = None
        session.flush()


def request_bundle(session: Session, row: ScoreRow, at: datetime) -> None:
    """Mark ``row``'s bundle requested at ``at`` (kept if already requested)."""
    if row.bundle is None and row.bundle_refused is None and row.bundle_requested_at is None:
        row.bundle_requested_at = at
        session.flush()


def requested_bundles(session: Session, limit: int) -> list[tuple[str, str, str]]:
    """Up to ``limit`` (did, ctx, record hash) whose bundle was requested, oldest request
    first (through the ``bundle_requested_at`` index)."""
    s = ScoreRow
    query = (
        select(s.did, s.ctx, s.record_hash)
        .where(s.bundle_requested_at.is_not(None))
        .order_by(s.bundle_requested_at, s.did, s.ctx)
        .limit(limit)
    )
    return [(r[0], r[1], r[2]) for r in session.execute(query)]


def enqueue_capabilities(session: Session, rows: Sequence[CapabilityQueueRow]) -> int:
    """Insert each of ``rows`` unless one with its (rule set, subject, reason) exists
    (``ON CONFLICT DO NOTHING``, ``_CHUNK`` rows a statement); how many were inserted."""
    dialect = session.get_bind().dialect.name
    upsert = pg_insert if dialect == "postgresql" else sqlite_insert
    inserted = 0
    for start in range(0, len(rows), _CHUNK):
        values = [_values(r, _queue) for r in rows[start : start + _CHUNK]]
        statement = (
            upsert(_queue)
            .values(values)
            .on_conflict_do_nothing(index_elements=["rule_set_id", "subject_did", "reason_hash"])
            .returning(_queue.c.id)
        )
        inserted += len(session.execute(statement).all())
    return inserted


def queue_rows(session: Session) -> list[CapabilityQueueRow]:
    """The capability queue, oldest first."""
    query = select(CapabilityQueueRow).order_by(
        CapabilityQueueRow.created_at, CapabilityQueueRow.id
    )
    return list(session.scalars(query))
