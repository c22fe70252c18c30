"""``commons log audit``: recompute the whole tree from the stored entries.

The audit reads one snapshot of the database (:func:`credit_commons.core.db.snapshot`): the
checkpoints, the log state and every entry as they were at its first read, however long it
runs, and it never takes the write lock, so API writes and the sequencer go on beside it.
Streams every entry in index order (checking there is no gap), hashes it, and keeps a
compact range (one subtree root per set bit of the size), so memory stays O(log n).  At
every stored checkpoint size the recomputed root must equal the checkpoint's root, and
every checkpoint's signature must verify under the log key; at the end the recomputed root
must equal the sequenced state's root.  The first mismatch raises.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Row, Table, select
from sqlalchemy.engine import Connection, Engine

from credit_commons.core.db import snapshot
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.errors import LogError
from credit_commons.ledger.models import CheckpointRow, LogEntryRow, LogStateRow
from credit_commons.ledger.note import Ed25519Verifier, verify_note
from credit_commons.ledger.rfc6962 import EMPTY_ROOT

__all__ = ["AuditFailed", "AuditReport", "audit_log"]

_entries: Table = LogEntryRow.__table__  # type: ignore[assignment]


class AuditFailed(LogError):
    """The stored log does not match its own checkpoints (or has a gap)."""

    code = "log.audit_failed"
    title = "Log audit failed"


@dataclass(frozen=True)
class AuditReport:
    """The outcome of a successful audit."""

    size: int
    root: bytes
    checkpoints: int


def _root(stack: list[bytes]) -> bytes:
    if not stack:
        return EMPTY_ROOT
    acc = stack[-1]
    for left in reversed(stack[:-1]):
        acc = hashlib.sha256(b"\x01" + left + acc).digest()
    return acc


def _checked_checkpoints(
    checkpoints: Sequence[Row[int, bytes, str]], verifiers: Sequence[Ed25519Verifier]
) -> dict[int, bytes]:
    """Each stored checkpoint's root by size, once its note verifies under the key of its
    origin (a log continued under a declared new origin has checkpoints of both) and states
    that root."""
    for size, root, note in checkpoints:
        try:
            checkpoint = Checkpoint.parse(verify_note(note, verifiers).text)
        except LogError as e:
            raise AuditFailed(f"checkpoint {size} does not verify under the log key") from e
        if checkpoint.size != size or bytes(checkpoint.root_hash) != bytes(root):
            raise AuditFailed(f"checkpoint {size} row differs from its signed note")
    return {int(size): bytes(root) for size, root, _ in checkpoints}


def _replay(
    connection: Connection,
    targets: dict[int, bytes],
    progress: Callable[[int], None] | None,
    chunk: int,
) -> tuple[int, list[bytes]]:
    """Hash every entry in index order; returns the leaf count and the compact range."""
    sha = hashlib.sha256
    stack: list[bytes] = []
    count = 0
    # A compact range: stack[i] is a complete subtree; merging follows the binary carry of
    # the leaf count (RFC 9162 §2.1.1 MTH built left to right).
    rows = connection.execute(
        select(_entries.c.leaf_index, _entries.c.entry).order_by(_entries.c.leaf_index),
        execution_options={"yield_per": chunk},
    )
    try:
        for partition in rows.partitions(chunk):
            for index, entry in partition:
                if index != count:
                    raise AuditFailed(f"log entries have a gap or duplicate at index {count}")
                node = sha(b"\x00" + bytes(entry)).digest()
                count += 1
                carry = count
                while not carry & 1:
                    node = sha(b"\x01" + stack.pop() + node).digest()
                    carry >>= 1
                stack.append(node)
                if count in targets and _root(stack) != targets[count]:
                    raise AuditFailed(f"recomputed root differs from checkpoint {count}")
            if progress:
                progress(count)
    finally:
        rows.close()  # a server-side cursor on PostgreSQL must not outlive an early exit
    return count, stack


def audit_log(
    engine: Engine,
    log_vkey: str | Sequence[str],
    progress: Callable[[int], None] | None = None,
    chunk: int = 50_000,
) -> AuditReport:
    """Audit the log in ``engine``; ``progress`` is called with the leaves done so far.

    ``log_vkey`` is the log's verifier key, or one per origin the log signed under (see
    ``LogIdentity.vkeys``).  Raises :class:`AuditFailed` on a gap, a root mismatch or a
    checkpoint whose signature no given key verifies.
    """
    keys = [log_vkey] if isinstance(log_vkey, str) else list(log_vkey)
    verifier = [Ed25519Verifier.from_vkey(k) for k in keys]
    with snapshot(engine) as connection:
        checkpoints = connection.execute(
            select(CheckpointRow.size, CheckpointRow.root, CheckpointRow.note).order_by(
                CheckpointRow.size
            )
        ).all()
        state = connection.execute(select(LogStateRow.size, LogStateRow.root)).one()
        targets = _checked_checkpoints(checkpoints, verifier)
        count, stack = _replay(connection, targets, progress, chunk)
    if 0 in targets and targets[0] != EMPTY_ROOT:
        raise AuditFailed("checkpoint 0 does not have the empty root")
    if count != state.size:
        raise AuditFailed(f"log state says {state.size} leaves but {count} are stored")
    root = _root(stack)
    if root != bytes(state.root):
        raise AuditFailed("recomputed root differs from the log state")
    missing = [s for s in targets if s > count]
    if missing:
        raise AuditFailed(f"checkpoint {missing[0]} is beyond the stored entries")
    return AuditReport(count, root, len(targets))
