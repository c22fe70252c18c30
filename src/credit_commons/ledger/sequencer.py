"""The sequencer: numbers recorded events into the log, exactly once and in order.

Each batch runs in one transaction that holds the log lock (the ``log_state`` row, locked
``FOR UPDATE`` on PostgreSQL; SQLite transactions begin ``IMMEDIATE``): it takes up to
``limit`` outbox rows, writes them as log entries ``size, size+1, …``, deletes them from the
outbox, extends the hash tiles and stores the new size and root.  A crash anywhere rolls the
whole batch back, so the log never has a gap or a duplicate; the unique ``event_id`` on
``log_entries`` makes a duplicate impossible even for a buggy caller.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Table, any_, bindparam, delete, insert, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, sessionmaker

from credit_commons.core.db import transaction
from credit_commons.events import LogOutboxRow
from credit_commons.formats.tlog_tiles import TileCache
from credit_commons.ledger.models import LogEntryRow, LogStateRow
from credit_commons.ledger.rfc6962 import Hash, root_from_source
from credit_commons.ledger.tiles import TileHashSource, append_leaf_hashes

__all__ = ["SequenceResult", "leaf_key", "lock_state", "sequence_batch", "sequence_pending"]

_outbox: Table = LogOutboxRow.__table__  # type: ignore[assignment]
_entries: Table = LogEntryRow.__table__  # type: ignore[assignment]
_DELETE_CHUNK = 5000


@dataclass(frozen=True)
class SequenceResult:
    """What one sequencing run did: leaves appended, and the tree it left."""

    appended: int
    size: int
    root: Hash


def leaf_key(leaf_hash: bytes) -> int:
    """The indexed key of a leaf hash: its first 8 bytes as a signed 64-bit integer."""
    return int.from_bytes(leaf_hash[:8], "big", signed=True)


def lock_state(session: Session) -> LogStateRow:
    """The log state row, locked for the rest of the transaction."""
    return session.execute(
        select(LogStateRow).where(LogStateRow.id == 1).with_for_update()
    ).scalar_one()


def _delete_outbox(session: Session, ids: list[int]) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # One array parameter instead of thousands of bind parameters: on PostgreSQL the
        # IN-list form costs as much as inserting the entries.
        param = bindparam("ids", value=ids, type_=postgresql.ARRAY(BigInteger))
        session.execute(delete(_outbox).where(_outbox.c.id == any_(param)))
        return
    for i in range(0, len(ids), _DELETE_CHUNK):
        session.execute(delete(_outbox).where(_outbox.c.id.in_(ids[i : i + _DELETE_CHUNK])))


def sequence_batch(
    session: Session, *, limit: int = 10_000, cache: TileCache | None = None
) -> SequenceResult:
    """Sequence up to ``limit`` pending events in the caller's transaction."""
    state = lock_state(session)
    rows: list[Any] = list(
        session.execute(
            select(_outbox.c.id, _outbox.c.event_id, _outbox.c.entry)
            .order_by(_outbox.c.id)
            .limit(limit)
        )
    )
    if rows:
        _delete_outbox(session, [row[0] for row in rows])
    if not rows:
        return SequenceResult(0, state.size, Hash(state.root))
    start = state.size
    sha = hashlib.sha256
    entries = [bytes(row[2]) for row in rows]
    # RFC 9162 §2.1.1: a leaf hash is SHA-256(0x00 || entry).
    hashes = [sha(b"\x00" + e).digest() for e in entries]
    session.execute(
        insert(_entries),
        [
            {
                "leaf_index": start + i,
                "event_id": row[1],
                "entry": entries[i],
                "leaf_key": leaf_key(hashes[i]),
            }
            for i, row in enumerate(rows)
        ],
    )
    append_leaf_hashes(session, start, hashes)
    size = start + len(rows)
    root = root_from_source(size, TileHashSource(session, cache))
    state.size, state.root = size, bytes(root)
    session.flush()
    return SequenceResult(len(rows), size, root)


def sequence_pending(
    sessions: sessionmaker[Session],
    *,
    limit: int = 10_000,
    cache: TileCache | None = None,
    max_total: int | None = None,
) -> SequenceResult:
    """Sequence pending events, one committed batch of ``limit`` at a time, until none is
    left or ``max_total`` have been sequenced."""
    total = 0
    while True:
        batch = limit if max_total is None else min(limit, max_total - total)
        with transaction(sessions) as session:
            result = sequence_batch(session, limit=batch, cache=cache)
        total += result.appended
        if result.appended < batch or (max_total is not None and total >= max_total):
            return SequenceResult(total, result.size, result.root)
