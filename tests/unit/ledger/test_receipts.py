"""Unit tests of credit_commons.ledger.receipts: step 1 (the log's signature on the
checkpoint) is checked once per (note, log key), and never remembered for anything else."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from credit_commons.core.errors import CommonsError
from credit_commons.ledger import note, receipts
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.rfc6962 import InMemoryTree, inclusion_proof, leaf_hash

ORIGIN = "log.example/receipts"


def _entries(count: int) -> list[str]:
    at = "2026-01-01T00:00:00Z"
    return [
        json.dumps(
            {"v": 1, "id": f"evt_{i:026d}", "type": "t", "at": at, "digest": "d"},
            separators=(",", ":"),
        )
        for i in range(count)
    ]


def _receipts(signer: note.Ed25519Signer, entries: list[str]) -> list[dict[str, Any]]:
    tree = InMemoryTree(leaf_hash(e.encode()) for e in entries)
    text = Checkpoint(ORIGIN, tree.size, tree.root()).format()
    checkpoint = note.sign_note(text, signer)
    return [
        {
            "format": "credit-commons-receipt/v1",
            "index": i,
            "entry": entry,
            "inclusion_proof": [h.b64() for h in inclusion_proof(i, tree.size, tree)],
            "checkpoint": checkpoint,
        }
        for i, entry in enumerate(entries)
    ]


def _signer() -> note.Ed25519Signer:
    skey, _ = note.generate_key(ORIGIN, secrets.token_bytes(32))
    return note.Ed25519Signer.from_skey(skey)


def test_one_checkpoint_is_verified_once_and_nothing_else_is_taken_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = _signer()
    vkey = signer.verifier().vkey
    calls: list[str] = []
    real = receipts.verify_checkpoint

    def counted(data: str | bytes, verifier: note.Verifier) -> Checkpoint:
        calls.append(str(data))
        return real(data, verifier)

    monkeypatch.setattr(receipts, "verify_checkpoint", counted)
    made = _receipts(signer, _entries(5))
    assert [receipts.verify_receipt(r, vkey).index for r in made] == [0, 1, 2, 3, 4]
    assert len(calls) == 1  # the signature of the one checkpoint, once
    for r in made:  # and again: still remembered
        receipts.verify_receipt(r, vkey)
    assert len(calls) == 1

    # A note one byte off (its size line), the same note under another key, and a note
    # signed by another key: each verified afresh, and refused.
    forged = dict(made[0], checkpoint=made[0]["checkpoint"].replace("\n5\n", "\n6\n", 1))
    with pytest.raises(CommonsError):
        receipts.verify_receipt(forged, vkey)
    with pytest.raises(CommonsError):
        receipts.verify_receipt(made[0], _signer().verifier().vkey)
    other = _receipts(_signer(), _entries(5))[0]
    with pytest.raises(CommonsError):
        receipts.verify_receipt(other, vkey)
    assert len(calls) == 4
    # A refused note is not remembered either: asked again, it is checked again.
    with pytest.raises(CommonsError):
        receipts.verify_receipt(forged, vkey)
    assert len(calls) == 5
