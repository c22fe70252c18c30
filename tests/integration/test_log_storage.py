"""The log on SQLite and PostgreSQL: outbox → sequencer → tiles → checkpoints → proofs."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64_decode
from credit_commons.events import (
    EventRow,
    LogOutboxRow,
    RecordedEvent,
    event_digest,
    event_document,
    record_event,
)
from credit_commons.formats.tlog_tiles import TileCache
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.service import KeyRotated
from credit_commons.ledger import rfc6962
from credit_commons.ledger import service as log_service
from credit_commons.ledger import verify_receipt as log_service_verify
from credit_commons.ledger.checkpoint import verify_checkpoint
from credit_commons.ledger.continuity import ContinuityGuard
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.models import LogEntryRow, LogTileRow
from credit_commons.ledger.note import Ed25519Verifier
from credit_commons.ledger.sequencer import sequence_batch, sequence_pending
from credit_commons.runtime import Runtime


def record(runtime: Runtime, count: int) -> list[str]:
    ids = []
    with transaction(runtime.sessions) as session:
        for i in range(count):
            ids.append(
                record_event(
                    session,
                    KeyRotated(
                        key_name="k", version=i + 1, key_type=KeyType.ED25519, kid=f"kid{i}"
                    ),
                    actor=runtime.operator_actor(),
                    at=runtime.clock.now(),
                ).id
            )
    return ids


def all_leaf_hashes(runtime: Runtime) -> list[bytes]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(sa.select(LogEntryRow.entry).order_by(LogEntryRow.leaf_index))
        return [rfc6962.leaf_hash(bytes(e)) for (e,) in rows]


@pytest.mark.parametrize("batches", [[1], [255, 1, 256], [300, 17, 600], [1000]])
def test_sequenced_tiles_match_the_reference_tree(runtime: Runtime, batches: list[int]) -> None:
    cache = TileCache()
    for count in batches:
        record(runtime, count)
        with transaction(runtime.sessions) as session:
            result = sequence_batch(session, limit=10_000, cache=cache)
        assert result.appended == count
    leaves = all_leaf_hashes(runtime)
    tree = rfc6962.InMemoryTree(leaves)
    assert result.size == len(leaves) == sum(batches)
    assert result.root == tree.root()
    with transaction(runtime.sessions) as session:
        source_cached = log_service.TileHashSource(session, cache)
        source_cold = log_service.TileHashSource(session)
        for size in sorted({1, 2, 255, 256, 257, len(leaves) // 2 + 1, len(leaves)}):
            if size > len(leaves):
                continue
            assert rfc6962.root_from_source(size, source_cold) == tree.root(size)
            for index in {0, size // 2, size - 1}:
                proof = rfc6962.inclusion_proof(index, size, source_cached)
                rfc6962.verify_inclusion(leaves[index], index, size, proof, tree.root(size))
            if size > 1:
                proof = rfc6962.consistency_proof(size - 1, len(leaves), source_cold)
                rfc6962.verify_consistency(
                    size - 1, len(leaves), proof, tree.root(size - 1), tree.root()
                )
        assert session.scalar(sa.select(sa.func.count()).select_from(LogOutboxRow)) == 0
        widths = session.execute(
            sa.select(LogTileRow.level, sa.func.length(LogTileRow.hashes))
        ).all()
        assert all(w <= 256 * 32 and w % 32 == 0 for _, w in widths)


def test_leaves_are_event_references_without_personal_data(runtime: Runtime) -> None:
    ids = record(runtime, 3)
    sequence_pending(runtime.sessions)
    with transaction(runtime.sessions) as session:
        page = log_service.entries(session, 0, 3)

        for item, event_id in zip(page, ids, strict=True):
            entry = item.entry
            assert set(entry) == {"v", "id", "type", "at", "digest"}
            assert entry["id"] == event_id
            event = RecordedEvent.from_row(session.get(EventRow, event_id))  # type: ignore[arg-type]
            assert entry["digest"] == event_digest(event_document(event))
            assert event.actor not in json.dumps(entry)


def test_checkpoints_receipts_and_consistency(runtime: Runtime) -> None:
    identity = log_identity(runtime)
    guard = ContinuityGuard(runtime.settings)
    origin, vkey = identity.origin, identity.vkey
    ids = record(runtime, 5)
    sequence_pending(runtime.sessions)
    with transaction(runtime.sessions) as session:
        first = log_service.publish_checkpoint(
            session, runtime.key_store, runtime.clock, identity, guard=guard
        )
        again = log_service.publish_checkpoint(
            session, runtime.key_store, runtime.clock, identity, guard=guard
        )
    assert first.new
    assert not again.new
    verifier = Ed25519Verifier.from_vkey(vkey)
    checkpoint = verify_checkpoint(first.row.note, verifier, origin=origin)
    assert checkpoint.size == 5
    record(runtime, 7)
    sequence_pending(runtime.sessions)
    with transaction(runtime.sessions) as session:
        second = log_service.publish_checkpoint(
            session, runtime.key_store, runtime.clock, identity, guard=guard
        )
        proof = log_service.consistency_proof(session, 5)
        receipt = log_service.receipt(session, ids[2], include_event=True)
    newer = verify_checkpoint(second.row.note, verifier, origin=origin)
    assert proof.to == newer.size == 12
    rfc6962.verify_consistency(
        5,
        12,
        [rfc6962.Hash(b64_decode(h)) for h in proof.proof],
        checkpoint.root_hash,
        newer.root_hash,
    )
    assert receipt.index == 2
    rfc6962.verify_inclusion(
        rfc6962.leaf_hash(receipt.entry.encode()),
        2,
        12,
        [rfc6962.Hash(b64_decode(h)) for h in receipt.inclusion_proof],
        newer.root_hash,
    )
    assert receipt.event is not None
    assert json.loads(receipt.entry)["digest"] == event_digest(receipt.event)


def test_a_failed_batch_leaves_no_gap_and_no_duplicate(runtime: Runtime) -> None:
    record(runtime, 10)

    def crash() -> None:
        with transaction(runtime.sessions) as session:
            sequence_batch(session, limit=4)
            raise RuntimeError("killed mid-batch")

    with pytest.raises(RuntimeError, match="killed"):
        crash()
    result = sequence_pending(runtime.sessions, limit=4)
    assert result.appended == result.size == 10
    with runtime.engine.connect() as connection:
        indexes = [
            i
            for (i,) in connection.execute(
                sa.select(LogEntryRow.leaf_index).order_by(LogEntryRow.leaf_index)
            )
        ]
    assert indexes == list(range(10))
    assert result.root == rfc6962.InMemoryTree(all_leaf_hashes(runtime)).root()


def test_receipts_of_many_events_are_each_events_own_against_one_checkpoint(
    runtime: Runtime,
) -> None:
    # 300 leaves: the proofs read full and partial tiles of two levels.  Events sequenced
    # after the checkpoint have no receipt yet.
    identity = log_identity(runtime)
    ids = record(runtime, 300)
    sequence_pending(runtime.sessions)
    with transaction(runtime.sessions) as session:
        signed = log_service.publish_checkpoint(
            session,
            runtime.key_store,
            runtime.clock,
            identity,
            guard=ContinuityGuard(runtime.settings),
        )
    later = record(runtime, 3)
    sequence_pending(runtime.sessions)
    wanted = [ids[0], ids[1], ids[255], ids[256], ids[299], ids[137], *later, "evt_unknown"]
    cache = TileCache()
    with transaction(runtime.sessions) as session:
        found = log_service.receipts(session, wanted, include_event=True, cache=cache)
        public = log_service.receipts(session, wanted[:3], include_event=False)
        one_by_one = {
            e: log_service.inclusion_proof(session, found[e].index, 300).proof for e in found
        }
        single = log_service.receipt(session, ids[256], include_event=True)
    assert set(found) == {ids[0], ids[1], ids[255], ids[256], ids[299], ids[137]}
    assert found[ids[256]] == single
    for event_id, receipt in found.items():
        assert receipt.index == ids.index(event_id)
        assert receipt.inclusion_proof == one_by_one[event_id]
        assert receipt.checkpoint == signed.row.note
        verified = log_service_verify(receipt.model_dump(mode="json"), identity.vkey)
        assert verified.entry.id == event_id
        assert verified.event_checked
    assert len(public) == 3
    assert all(r.event is None for r in public.values())
    with transaction(runtime.sessions) as session:
        assert log_service.receipts(session, later, include_event=True) == {}
        assert log_service.receipts(session, [], include_event=True) == {}
