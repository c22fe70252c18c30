"""The node's mirror in its database: pins, verified messages, the log's tree, checkpoints,
forks, blobs, status lists and counters.  Every write is idempotent, so a message
redelivered after a crash changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, and_, func, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from credit_commons.core.encoding import b64_encode
from credit_commons.core.errors import ConflictError, NotFoundError, ValidationError
from credit_commons.ledger import (
    EMPTY_ROOT,
    ConsistencyProof,
    Hash,
    InclusionProof,
    NodeId,
    TreeRangeInvalid,
    consistency_proof,
    inclusion_proof,
    node_hash,
    root_from_source,
)
from credit_commons.node.models import (
    NodeBlobRow,
    NodeCheckpointRow,
    NodeCounterRow,
    NodeForkRow,
    NodeMessageRow,
    NodePinRow,
    NodeRuleSetRow,
    NodeStatusListRow,
    NodeTreeRow,
)

__all__ = [
    "ConflictError",
    "DropHook",
    "PinMismatch",
    "TreeSource",
    "add_blob",
    "add_blobs",
    "add_checkpoint",
    "add_message",
    "add_messages",
    "add_rule_set",
    "append_leaves",
    "blob",
    "checkpoint",
    "consistency",
    "count",
    "counter",
    "counters",
    "forks",
    "has_message",
    "held_positions",
    "inclusion",
    "latest_checkpoint",
    "pin",
    "pins",
    "put_status_list",
    "record_fork",
    "rule_set",
    "set_checkpoint_note",
    "set_counter",
    "set_value",
    "status_list",
    "status_lists",
    "tree_root",
    "tree_size",
]

DropHook = Callable[[str, str], None]
"""Called with (stream, reason) for each dropped message, after it is counted: where
per-peer and per-subject quotas (issue 20, item 4) plug in."""

_TREE_SIZE = "tree.size"

# Core inserts, one executemany a batch: no unit-of-work object per row.
_MESSAGES = cast(Table, NodeMessageRow.__table__)
_TREE = cast(Table, NodeTreeRow.__table__)
_BLOBS = cast(Table, NodeBlobRow.__table__)


class PinMismatch(ConflictError):
    """The followed platform presents another value than the one pinned on first use."""

    code = "node.pin_mismatch"
    title = "Pinned value differs"


def pins(session: Session) -> dict[str, str]:
    """Every pinned value by name."""
    return {row.name: row.value for row in session.scalars(select(NodePinRow))}


def pin(session: Session, name: str, value: str, now: datetime) -> None:
    """Pin ``value`` under ``name`` on first use; raises :class:`PinMismatch` when another
    value was pinned before."""
    row = session.get(NodePinRow, name)
    if row is None:
        session.add(NodePinRow(name=name, value=value, pinned_at=now))
        session.flush()
    elif row.value != value:
        raise PinMismatch(
            f"the followed platform's {name} is not the one pinned on first use",
            extra={"pin": name},
        )


def set_value(session: Session, name: str, value: str, now: datetime) -> None:
    """Store ``value`` under ``name``, replacing what was there (not a pin: the issuer's
    current keys, read from the followed platform)."""
    row = session.get(NodePinRow, name)
    if row is None:
        session.add(NodePinRow(name=name, value=value, pinned_at=now))
    elif row.value != value:
        row.value, row.pinned_at = value, now


def count(session: Session, name: str, amount: int = 1) -> None:
    """Add ``amount`` to counter ``name``."""
    row = session.get(NodeCounterRow, name, with_for_update=True)
    if row is None:
        session.add(NodeCounterRow(name=name, value=amount))
        session.flush()
    else:
        row.value += amount


def counters(session: Session) -> dict[str, int]:
    """Every counter by name."""
    return {row.name: int(row.value) for row in session.scalars(select(NodeCounterRow))}


def set_counter(session: Session, name: str, value: int) -> None:
    """Set counter ``name`` to ``value`` (a position, such as a stream sequence)."""
    row = session.get(NodeCounterRow, name, with_for_update=True)
    if row is None:
        session.add(NodeCounterRow(name=name, value=value))
        session.flush()
    else:
        row.value = value


def counter(session: Session, name: str) -> int:
    value = session.scalar(select(NodeCounterRow.value).where(NodeCounterRow.name == name))
    return 0 if value is None else int(value)


def has_message(session: Session, stream: str, position: int) -> bool:
    """Whether the message at ``position`` of ``stream`` is stored."""
    return session.get(NodeMessageRow, (stream, position)) is not None


def held_positions(session: Session, stream: str, positions: Sequence[int]) -> set[int]:
    """Which of ``positions`` of ``stream`` are stored."""
    if not positions:
        return set()
    rows = session.scalars(
        select(NodeMessageRow.position).where(
            NodeMessageRow.stream == stream, NodeMessageRow.position.in_(list(positions))
        )
    )
    return {int(p) for p in rows}


def last_position(session: Session, stream: str) -> int:
    """The largest position stored from ``stream`` (-1 before the first)."""
    value = session.scalar(
        select(func.max(NodeMessageRow.position)).where(NodeMessageRow.stream == stream)
    )
    return -1 if value is None else int(value)


def add_messages(
    session: Session, stream: str, rows: Sequence[tuple[int, str, str]], now: datetime
) -> None:
    """Store verified messages (position, subject, body) the caller found not held: one
    executemany, not a unit-of-work object per message."""
    if rows:
        session.execute(
            insert(_MESSAGES),
            [
                {"stream": stream, "position": p, "subject": sub, "body": b, "received_at": now}
                for p, sub, b in rows
            ],
        )
        count(session, f"accepted.{stream}", len(rows))


def add_message(
    session: Session, stream: str, position: int, *, subject: str, body: str, now: datetime
) -> bool:
    """Store a verified message; ``False`` (and nothing written) when it is already there."""
    if has_message(session, stream, position):
        return False
    session.add(
        NodeMessageRow(
            stream=stream, position=position, subject=subject, body=body, received_at=now
        )
    )
    count(session, f"accepted.{stream}")
    return True


# -- the tree ------------------------------------------------------------------------------


def tree_size(session: Session) -> int:
    """How many leaves of the followed log are mirrored."""
    return counter(session, _TREE_SIZE)


_IN_CHUNK = 500
"""The most leaf indexes one sparse lookup names."""


class TreeSource:
    """A ledger ``HashSource`` over the mirrored tree: each complete subtree is a row."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def leaf(self, index: int) -> bytes:
        """The mirrored leaf hash at ``index``."""
        (found,) = self.subtree_roots([NodeId(0, index)])
        return found

    def leaves(self, indexes: Sequence[int], /) -> dict[int, bytes]:
        """The mirrored leaf hashes at ``indexes`` (those mirrored; the others are absent):
        one range of the leaf level when the indexes are dense (a batch of consecutive
        events), else ``IN`` lists of at most :data:`_IN_CHUNK` — the indexes come from
        messages not yet verified, so one claiming index 0 beside a genuine high one must
        not make a batch read the whole leaf level."""
        wanted = set(indexes)
        if not wanted:
            return {}
        low, high = min(wanted), max(wanted)
        level = NodeTreeRow.level == 0
        if high - low < 4 * len(wanted):
            rows = self._session.execute(
                select(NodeTreeRow.idx, NodeTreeRow.hash).where(
                    level, NodeTreeRow.idx >= low, NodeTreeRow.idx <= high
                )
            )
            return {int(i): bytes(h) for i, h in rows if int(i) in wanted}
        ordered = sorted(wanted)
        found: dict[int, bytes] = {}
        for start in range(0, len(ordered), _IN_CHUNK):
            chunk = ordered[start : start + _IN_CHUNK]
            rows = self._session.execute(
                select(NodeTreeRow.idx, NodeTreeRow.hash).where(level, NodeTreeRow.idx.in_(chunk))
            )
            found.update((int(i), bytes(h)) for i, h in rows)
        return found

    def subtree_roots(self, nodes: Sequence[NodeId], /) -> list[bytes]:
        if not nodes:
            return []
        wanted = or_(
            *(and_(NodeTreeRow.level == n.level, NodeTreeRow.idx == n.index) for n in nodes)
        )
        found = {
            (int(level), int(idx)): bytes(h)
            for level, idx, h in self._session.execute(
                select(NodeTreeRow.level, NodeTreeRow.idx, NodeTreeRow.hash).where(wanted)
            )
        }
        out = []
        for node in nodes:
            value = found.get((node.level, node.index))
            if value is None:
                raise TreeRangeInvalid(f"subtree ({node.level}, {node.index}) is not mirrored")
            out.append(value)
        return out


def append_leaves(session: Session, start: int, leaf_hashes: Sequence[bytes]) -> int:
    """Append leaf hashes from leaf ``start`` (which must be the mirrored size) and every
    subtree they complete; the new size.  Raises :class:`ConflictError` when ``start`` is
    not the mirrored size (another writer got there first)."""
    size = tree_size(session)
    if start != size:
        raise ConflictError(f"the mirror holds {size} leaves, not {start}")
    # The left siblings the new leaves need from before: the right edge of ``size``.
    edge = [NodeId(level, (size >> level) - 1) for level in range(64) if (size >> level) & 1]
    known: dict[tuple[int, int], bytes] = {}
    if edge:
        for node, h in zip(edge, TreeSource(session).subtree_roots(edge), strict=True):
            known[(node.level, node.index)] = h
    new: list[dict[str, object]] = []
    for offset, leaf in enumerate(leaf_hashes):
        index, level, current = size + offset, 0, bytes(leaf)
        known[(0, index)] = current
        new.append({"level": 0, "idx": index, "hash": current})
        while index & 1:
            current = bytes(node_hash(known[(level, index - 1)], current))
            index, level = index >> 1, level + 1
            known[(level, index)] = current
            new.append({"level": level, "idx": index, "hash": current})
    # One executemany per call: a catch-up appends about two rows per leaf, a million
    # leaves at a time, which the unit of work would build an object for each.
    if new:
        session.execute(insert(_TREE), new)
    count(session, _TREE_SIZE, len(leaf_hashes))
    session.flush()
    return size + len(leaf_hashes)


def tree_root(session: Session, size: int) -> Hash:
    """The root of the first ``size`` mirrored leaves."""
    if size == 0:
        return EMPTY_ROOT
    return root_from_source(size, TreeSource(session))


# -- checkpoints and forks -----------------------------------------------------------------


def latest_checkpoint(session: Session) -> NodeCheckpointRow | None:
    """The largest mirrored checkpoint."""
    return session.scalars(
        select(NodeCheckpointRow).order_by(NodeCheckpointRow.size.desc()).limit(1)
    ).first()


def checkpoint(session: Session, size: int) -> NodeCheckpointRow | None:
    """The mirrored checkpoint of ``size`` leaves."""
    return session.get(NodeCheckpointRow, size)


def add_checkpoint(session: Session, size: int, root: bytes, note: str, now: datetime) -> None:
    """Store a checkpoint the caller checked against the mirror (idempotent)."""
    if session.get(NodeCheckpointRow, size) is None:
        session.add(NodeCheckpointRow(size=size, root_hash=root, note=note, received_at=now))


def set_checkpoint_note(session: Session, size: int, note: str) -> None:
    """Serve ``note`` for the mirrored checkpoint of ``size`` from now on: the same
    checkpoint with the committee's cosignature, which the caller verified."""
    row = session.get(NodeCheckpointRow, size, with_for_update=True)
    if row is not None:
        row.note = note


def record_fork(session: Session, size: int, note: str, reason: str, now: datetime) -> None:
    """Keep a refused checkpoint as evidence."""
    session.add(NodeForkRow(size=size, note=note, reason=reason, recorded_at=now))
    count(session, "forks")


def forks(session: Session) -> list[NodeForkRow]:
    """Every refused checkpoint, oldest first."""
    return list(session.scalars(select(NodeForkRow).order_by(NodeForkRow.id)))


# -- blobs and status lists ----------------------------------------------------------------


def add_blob(session: Session, cid: str, body: bytes, now: datetime) -> None:
    """Store a blob whose CID the caller checked (idempotent)."""
    if cid not in session.info.setdefault("node_blobs", set()) and (
        session.get(NodeBlobRow, cid) is None
    ):
        session.add(NodeBlobRow(cid=cid, body=body, received_at=now))
    session.info["node_blobs"].add(cid)


def add_blobs(session: Session, blobs: Sequence[tuple[str, bytes]], now: datetime) -> None:
    """Store blobs whose CIDs the caller checked (idempotent): one insert that skips the
    CIDs already held (``ON CONFLICT DO NOTHING``, on SQLite and PostgreSQL), instead of a
    read of those held and an insert of the others."""
    seen: set[str] = session.info.setdefault("node_blobs", set())
    fresh = {cid: body for cid, body in blobs if cid not in seen}
    if fresh:
        dialect = session.get_bind().dialect.name
        statement = (sqlite_insert if dialect == "sqlite" else postgresql_insert)(_BLOBS)
        session.execute(
            statement.on_conflict_do_nothing(index_elements=["cid"]),
            [{"cid": cid, "body": body, "received_at": now} for cid, body in fresh.items()],
        )
    seen.update(fresh)


def blob(session: Session, cid: str) -> bytes | None:
    """A mirrored blob's bytes."""
    row = session.get(NodeBlobRow, cid)
    return None if row is None else bytes(row.body)


def put_status_list(
    session: Session, list_id: str, uri: str, *, token: str, media_type: str, now: datetime
) -> None:
    """Store (or replace) a status list token the caller verified."""
    row = session.get(NodeStatusListRow, list_id, with_for_update=True)
    if row is None:
        session.add(
            NodeStatusListRow(
                list_id=list_id, uri=uri, token=token, media_type=media_type, fetched_at=now
            )
        )
    else:
        row.uri, row.token, row.media_type, row.fetched_at = uri, token, media_type, now


def status_list(session: Session, list_id: str) -> NodeStatusListRow | None:
    """A mirrored status list."""
    return session.get(NodeStatusListRow, list_id)


def status_lists(session: Session) -> list[tuple[str, str]]:
    """Every mirrored list as (list id, uri)."""
    rows = session.execute(select(NodeStatusListRow.list_id, NodeStatusListRow.uri))
    return [(str(a), str(b)) for a, b in rows]


# -- proofs from the mirror ----------------------------------------------------------------


def _checkpointed(session: Session, size: int | None) -> int:
    # Proofs are served against the checkpoints the node verified, the latest by default.
    if size is None:
        latest = latest_checkpoint(session)
        if latest is None:
            raise NotFoundError("the node has mirrored no checkpoint yet")
        return int(latest.size)
    if checkpoint(session, size) is None:
        raise NotFoundError(
            "the node has mirrored no checkpoint of that size", extra={"field": "size"}
        )
    return size


def inclusion(session: Session, index: int, size: int | None) -> InclusionProof:
    """The inclusion proof of leaf ``index`` in the mirrored checkpoint of ``size``."""
    size = _checkpointed(session, size)
    if index >= size:
        raise ValidationError("index must be below the tree size", extra={"field": "index"})
    source = TreeSource(session)
    proof = inclusion_proof(index, size, source)
    return InclusionProof(
        index=index,
        size=size,
        leaf_hash=b64_encode(source.leaf(index)),
        proof=[h.b64() for h in proof],
    )


def consistency(session: Session, size1: int, size2: int | None) -> ConsistencyProof:
    """The consistency proof between two sizes, the second a mirrored checkpoint's."""
    size2 = _checkpointed(session, size2)
    if size1 > size2:
        raise ValidationError("from must not exceed to", extra={"field": "from"})
    proof = consistency_proof(size1, size2, TreeSource(session))
    return ConsistencyProof(from_=size1, to=size2, proof=[h.b64() for h in proof])


# -- rule sets -----------------------------------------------------------------------------


def add_rule_set(
    session: Session, rule_set_id: str, version: int, *, digest: str, token: str, now: datetime
) -> None:
    """Store a rule set version the caller verified (idempotent)."""
    if session.get(NodeRuleSetRow, (rule_set_id, version)) is None:
        session.add(
            NodeRuleSetRow(
                rule_set=rule_set_id, version=version, hash=digest, token=token, received_at=now
            )
        )


def rule_set(session: Session, rule_set_id: str, version: int | None) -> NodeRuleSetRow | None:
    """A mirrored rule set version (the newest when ``version`` is ``None``)."""
    query = select(NodeRuleSetRow).where(NodeRuleSetRow.rule_set == rule_set_id)
    if version is not None:
        query = query.where(NodeRuleSetRow.version == version)
    return session.scalars(query.order_by(NodeRuleSetRow.version.desc()).limit(1)).first()
