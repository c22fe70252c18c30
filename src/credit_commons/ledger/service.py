"""Use cases of the transparency log: checkpoints, proofs, entries and receipts.

The log signs checkpoints with the key-store key ``log`` (Ed25519); its signed-note key name
is the log origin.  Both are the log's identity, recorded when the log is created
(:mod:`credit_commons.ledger.identity`) and passed in here.  Proofs are served for any tree
size up to the sequenced size; clients check them against a checkpoint they hold.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from credit_commons.core.clock import Clock, utc
from credit_commons.core.encoding import JsonObject, b64_encode
from credit_commons.core.errors import NotFoundError, ValidationError
from credit_commons.events import EventRow, RecordedEvent, event_document
from credit_commons.formats.tlog_tiles import TileCache
from credit_commons.keys import KeyStore, StoredSigner
from credit_commons.ledger import rfc6962
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.continuity import ContinuityGuard
from credit_commons.ledger.identity import (
    LOG_KEY_NAME,
    LogIdentity,
    LogIdentityMismatch,
    log_identity,
)
from credit_commons.ledger.models import (
    CheckpointRow,
    CommitteeSignatureRow,
    CosignatureRow,
    LogEntryRow,
    LogStateRow,
)
from credit_commons.ledger.note import (
    ALG_ED25519,
    Signature,
    compute_key_id,
    format_vkey,
    parse_note,
    sign_note,
)
from credit_commons.ledger.schemas import ConsistencyProof, InclusionProof, LogEntry, Receipt
from credit_commons.ledger.sequencer import leaf_key
from credit_commons.ledger.tiles import TileHashSource

__all__ = [
    "LOG_KEY_NAME",
    "MAX_ENTRIES_PER_PAGE",
    "LogNoteSigner",
    "checkpoint_of_size",
    "checkpoint_with_cosignatures",
    "checkpoints_after",
    "consistency_proof",
    "cosigned_unpublished",
    "entries",
    "event_ids_between",
    "inclusion_proof",
    "latest_checkpoint",
    "leaf_indices",
    "log_identity",
    "log_signer",
    "log_state",
    "mark_cosigned_published",
    "publish_checkpoint",
    "receipt",
    "receipts",
    "sequenced_after",
]

MAX_ENTRIES_PER_PAGE = 1000
_entries: Table = LogEntryRow.__table__  # type: ignore[assignment]


class LogNoteSigner:
    """A signed-note signer (``note.Signer``) over the key store's ``log`` key."""

    def __init__(self, origin: str, signer: StoredSigner) -> None:
        self.name = origin
        self._signer = signer
        self.public_key = signer.public_key.raw()
        self.key_id = compute_key_id(origin, ALG_ED25519, self.public_key)

    def sign(self, message: bytes, /) -> bytes:
        """Ed25519 signature over ``message``."""
        return self._signer.sign(message)

    @property
    def vkey(self) -> str:
        """The verifier key ``name+hexid+base64`` (signed-note@v1.0.0)."""
        return format_vkey(self.name, ALG_ED25519, self.public_key)


def log_signer(session: Session, store: KeyStore, identity: LogIdentity) -> LogNoteSigner:
    """The log's note signer: the recorded origin over the recorded key.

    Raises :class:`LogIdentityMismatch` when the key store's newest version of the log key
    is not the recorded one (a rotated log key would start another log under the same name;
    auditors pinned the recorded key).
    """
    signer = store.signer(session, identity.key_name)
    if signer.kid != identity.key_id:
        raise LogIdentityMismatch(
            f"the newest version of key {identity.key_name!r} (kid {signer.kid}) is not the "
            f"log's recorded key (kid {identity.key_id})",
            hint="a log signs with one key for its whole life; restore the key store, or "
            "start a new log (a new database) for a new key",
        )
    return LogNoteSigner(identity.origin, signer)


def log_state(session: Session) -> tuple[int, rfc6962.Hash]:
    """The sequenced tree size and root."""
    row = session.get(LogStateRow, 1)
    if row is None:
        raise NotFoundError("the log is not initialised; run `commons db upgrade`")
    return row.size, rfc6962.Hash(row.root)


def latest_checkpoint(session: Session) -> CheckpointRow | None:
    """The newest signed checkpoint, if any."""
    return session.scalars(
        select(CheckpointRow).order_by(CheckpointRow.size.desc()).limit(1)
    ).first()


def checkpoint_of_size(session: Session, size: int) -> CheckpointRow | None:
    """The signed checkpoint of tree size ``size``, if the log signed one."""
    return session.get(CheckpointRow, size)


@dataclass(frozen=True)
class Published:
    """A checkpoint and whether this call signed it."""

    row: CheckpointRow
    new: bool


def publish_checkpoint(
    session: Session,
    store: KeyStore,
    clock: Clock,
    identity: LogIdentity,
    *,
    guard: ContinuityGuard,
    cache: TileCache | None = None,
) -> Published:
    """Sign a checkpoint of the sequenced tree unless the newest one already covers it.

    Before signing:

    1. the database's tree must continue everything this log published — the
       published-checkpoint file, the anchors, the witnesses (``guard``; raises
       :class:`~credit_commons.ledger.continuity.LogDiverged` naming the gap);
    2. the new tree must be consistent with the previous checkpoint in the database (a
       consistency proof from the stored tiles, verified; raises ``ConsistencyProofInvalid``
       if the stored tree was altered).

    After signing, the checkpoint is recorded in the published-checkpoint file (fsynced)
    before the caller commits and serves it.  Raises :class:`LogIdentityMismatch` too (see
    :func:`log_signer`).
    """
    size, root = log_state(session)
    previous = latest_checkpoint(session)
    if previous is not None and previous.size >= size:
        return Published(previous, False)
    # 1.
    guard.assess(session, identity, cache).check()
    # 2.
    if previous is not None and previous.size > 0:
        proof = rfc6962.consistency_proof(previous.size, size, TileHashSource(session, cache))
        rfc6962.verify_consistency(previous.size, size, proof, rfc6962.Hash(previous.root), root)
    signer = log_signer(session, store, identity)
    text = Checkpoint(origin=identity.origin, size=size, root_hash=root).format()
    note, now = sign_note(text, signer), clock.now()
    # Durable outside the database before it is committed and served: a restored database
    # can then never sign another root for this size (ledger/continuity.py).
    guard.record(identity.origin, size, root, note, now)
    row = CheckpointRow(size=size, root=bytes(root), note=note, created_at=now)
    session.add(row)
    session.flush()
    return Published(row, True)


def checkpoint_with_cosignatures(session: Session, row: CheckpointRow) -> str:
    """The checkpoint note with every stored witness cosignature line appended, then the
    checkpoint committee's group signature line if it has one (docs/log.md)."""
    lines = list(
        session.scalars(
            select(CosignatureRow.line)
            .where(CosignatureRow.size == row.size)
            .order_by(CosignatureRow.witness)
        ).all()
    )
    committee_line = session.scalar(
        select(CommitteeSignatureRow.line).where(CommitteeSignatureRow.size == row.size)
    )
    if committee_line is not None:
        lines.append(committee_line)
    if not lines:
        return row.note
    note = parse_note(row.note)
    return note.with_signatures(*(Signature.parse_line(line) for line in lines)).format()


def _size_or_latest(session: Session, size: int | None) -> int:
    sequenced, _ = log_state(session)
    if size is None:
        latest = latest_checkpoint(session)
        if latest is None:
            raise NotFoundError("the log has no checkpoint yet")
        return latest.size
    if size > sequenced:
        raise ValidationError("tree size is beyond the log's size", extra={"field": "size"})
    return size


def inclusion_proof(
    session: Session, index: int, size: int | None = None, cache: TileCache | None = None
) -> InclusionProof:
    """The inclusion proof of leaf ``index`` in the tree of ``size`` (default: the latest
    checkpoint's size)."""
    size = _size_or_latest(session, size)
    source = TileHashSource(session, cache)
    proof = rfc6962.inclusion_proof(index, size, source)
    leaf = source.subtree_roots([rfc6962.NodeId(0, index)])[0]
    return InclusionProof(
        index=index, size=size, leaf_hash=b64_encode(leaf), proof=[h.b64() for h in proof]
    )


def leaf_index_of(session: Session, leaf_hash: bytes, size: int) -> int:
    """The lowest index of a leaf whose hash is ``leaf_hash`` within the first ``size``.

    Raises :class:`NotFoundError` when there is none.
    """
    candidates = session.execute(
        select(_entries.c.leaf_index, _entries.c.entry)
        .where(_entries.c.leaf_key == leaf_key(leaf_hash), _entries.c.leaf_index < size)
        .order_by(_entries.c.leaf_index)
    )
    for index, entry in candidates:
        if rfc6962.leaf_hash(bytes(entry)) == leaf_hash:
            return int(index)
    raise NotFoundError("no leaf with that hash in the tree")


def leaf_indices(session: Session, event_ids: Collection[str]) -> dict[str, tuple[int, str]]:
    """The leaf index and entry text of each sequenced spine event among ``event_ids`` (an
    event still in the outbox has none yet), read in chunks of 500."""
    found: dict[str, tuple[int, str]] = {}
    ids = sorted(set(event_ids))
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(_entries.c.event_id, _entries.c.leaf_index, _entries.c.entry).where(
                _entries.c.event_id.in_(ids[start : start + 500])
            )
        )
        for event_id, index, entry in rows:
            found[str(event_id)] = (int(index), bytes(entry).decode("utf-8"))
    return found


def event_ids_between(session: Session, start: int, end: int) -> dict[str, int]:
    """The spine event id of each leaf in ``[start, end)``, with its leaf index."""
    rows = session.execute(
        select(_entries.c.event_id, _entries.c.leaf_index).where(
            _entries.c.leaf_index >= start, _entries.c.leaf_index < end
        )
    )
    return {str(event_id): int(index) for event_id, index in rows}


def consistency_proof(
    session: Session, size1: int, size2: int | None = None, cache: TileCache | None = None
) -> ConsistencyProof:
    """The consistency proof from ``size1`` to ``size2`` (default: latest checkpoint)."""
    size2 = _size_or_latest(session, size2)
    proof = rfc6962.consistency_proof(size1, size2, TileHashSource(session, cache))
    return ConsistencyProof(from_=size1, to=size2, proof=[h.b64() for h in proof])


def entries(session: Session, start: int, end: int) -> list[LogEntry]:
    """Log entries ``[start, end)`` (at most 1000), each with its leaf hash."""
    if start < 0 or end <= start:
        raise ValidationError("need 0 <= start < end", extra={"field": "start"})
    if end - start > MAX_ENTRIES_PER_PAGE:
        raise ValidationError(
            f"at most {MAX_ENTRIES_PER_PAGE} entries per request", extra={"field": "end"}
        )
    rows = session.execute(
        select(_entries.c.leaf_index, _entries.c.entry)
        .where(_entries.c.leaf_index >= start, _entries.c.leaf_index < end)
        .order_by(_entries.c.leaf_index)
    )
    return [
        LogEntry(
            index=int(index),
            entry=json.loads(bytes(entry)),
            leaf_hash=rfc6962.leaf_hash(bytes(entry)).b64(),
        )
        for index, entry in rows
    ]


def sequenced_after(session: Session, start: int, limit: int) -> list[tuple[int, str, bytes]]:
    """Up to ``limit`` sequenced entries from leaf ``start`` on, in leaf order: each as
    ``(leaf_index, event_id, entry)`` (the federation feed reads the spine's events in the
    order the log fixed)."""
    rows = session.execute(
        select(_entries.c.leaf_index, _entries.c.event_id, _entries.c.entry)
        .where(_entries.c.leaf_index >= start)
        .order_by(_entries.c.leaf_index)
        .limit(limit)
    )
    return [(int(index), str(event_id), bytes(entry)) for index, event_id, entry in rows]


def checkpoints_after(session: Session, size: int, limit: int) -> list[tuple[int, str, datetime]]:
    """Up to ``limit`` signed checkpoints larger than ``size``, smallest first: each as
    ``(size, note, created_at)``, the note with the witness cosignatures stored so far."""
    rows = session.scalars(
        select(CheckpointRow)
        .where(CheckpointRow.size > size)
        .order_by(CheckpointRow.size)
        .limit(limit)
    ).all()
    return [
        (int(row.size), checkpoint_with_cosignatures(session, row), utc(row.created_at))
        for row in rows
    ]


def cosigned_unpublished(
    session: Session, up_to: int, limit: int
) -> list[tuple[int, str, datetime]]:
    """Up to ``limit`` checkpoints of at most ``up_to`` leaves that carry the checkpoint
    committee's line and whose cosigned note was not yet published
    (:func:`mark_cosigned_published`), smallest first, as :func:`checkpoints_after` gives
    them (the note with every line stored so far, the committee's last)."""
    rows = session.scalars(
        select(CheckpointRow)
        .join(CommitteeSignatureRow, CommitteeSignatureRow.size == CheckpointRow.size)
        .where(CommitteeSignatureRow.published_at.is_(None), CheckpointRow.size <= up_to)
        .order_by(CommitteeSignatureRow.size)
        .limit(limit)
    ).all()
    return [
        (int(row.size), checkpoint_with_cosignatures(session, row), utc(row.created_at))
        for row in rows
    ]


def mark_cosigned_published(session: Session, sizes: Collection[int], now: datetime) -> None:
    """Record that the cosigned notes of ``sizes`` were published (acknowledged)."""
    if sizes:
        session.execute(
            update(CommitteeSignatureRow)
            .where(CommitteeSignatureRow.size.in_(sorted(sizes)))
            .values(published_at=now)
        )


def entry_bundle(session: Session, start: int, count: int) -> bytes | None:
    """The tlog-tiles entry bundle of entries ``[start, start + count)``: each entry as a
    big-endian uint16 length and its bytes, or ``None`` unless all ``count`` are stored."""
    rows = session.execute(
        select(_entries.c.entry)
        .where(_entries.c.leaf_index >= start, _entries.c.leaf_index < start + count)
        .order_by(_entries.c.leaf_index)
    ).all()
    if len(rows) != count:
        return None
    return b"".join(struct.pack(">H", len(e)) + bytes(e) for (e,) in rows)


def receipt(
    session: Session, event_id: str, *, include_event: bool, cache: TileCache | None = None
) -> Receipt:
    """A self-contained receipt: entry, index, inclusion proof and cosigned checkpoint.

    ``include_event`` adds the full event document (pseudonyms and details), for parties
    entitled to it; the public receipt proves inclusion of the entry alone.  Raises
    ``NotFoundError`` while the event is not yet covered by a checkpoint.
    """
    found = receipts(session, [event_id], include_event=include_event, cache=cache)
    if event_id not in found:
        raise NotFoundError("no checkpointed log entry for that event yet")
    return found[event_id]


def receipts(
    session: Session,
    event_ids: Collection[str],
    *,
    include_event: bool,
    cache: TileCache | None = None,
    events: Collection[EventRow] = (),
) -> dict[str, Receipt]:
    """The receipt (as :func:`receipt` makes it) of each event among ``event_ids`` that the
    latest checkpoint covers, all against that one checkpoint: one read of the checkpoint
    and its cosignatures, one of the entries, one of the tiles every proof needs (and one
    of the events, with ``include_event``, for those not among ``events``: rows the caller
    has just read in the same unit of work).  Events not yet covered are absent."""
    checkpoint = latest_checkpoint(session)
    if checkpoint is None or not event_ids:
        return {}
    size = int(checkpoint.size)
    covered = {
        event_id: (index, entry)
        for event_id, (index, entry) in leaf_indices(session, event_ids).items()
        if index < size
    }
    if not covered:
        return {}
    plans = {e: rfc6962.inclusion_plan(index, size) for e, (index, _) in covered.items()}
    nodes = list(dict.fromkeys(node for plan in plans.values() for node in plan.nodes))
    hashes = dict(zip(nodes, TileHashSource(session, cache).subtree_roots(nodes), strict=True))
    documents: dict[str, JsonObject] = {}
    if include_event:
        read = {row.id: row for row in events if row.id in covered}
        unread = [event_id for event_id in covered if event_id not in read]
        if unread:
            read.update(
                (row.id, row)
                for row in session.scalars(select(EventRow).where(EventRow.id.in_(unread)))
            )
        documents = {i: event_document(RecordedEvent.from_row(row)) for i, row in read.items()}
        missing = set(covered) - set(documents)
        if missing:
            raise NotFoundError("event not found")
    note = checkpoint_with_cosignatures(session, checkpoint)
    return {
        event_id: Receipt(
            format="credit-commons-receipt/v1",
            index=index,
            entry=entry,
            inclusion_proof=[
                h.b64()
                for h in plans[event_id].assemble([hashes[n] for n in plans[event_id].nodes])
            ],
            checkpoint=note,
            event=documents.get(event_id),
        )
        for event_id, (index, entry) in covered.items()
    }


def count_entries(session: Session) -> int:
    """The number of stored log entries."""
    return int(session.scalar(select(func.count()).select_from(_entries)) or 0)
