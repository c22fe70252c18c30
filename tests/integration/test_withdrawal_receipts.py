"""Proofs of withdrawal and erasure (issue 14 item 4), on both databases: revoking a consent
and erasing a subject each answer with a receipt — the event and the log's signed entry at
once, the inclusion proof and checkpoint once one covers it — that verifies offline, after
the erasure too, and that is rejected when any of its fields is tampered with."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.consent_world import World

from credit_commons.core.errors import CommonsError
from credit_commons.ledger.receipts import PendingReceipt, VerifiedReceipt, verify_any_receipt
from credit_commons.ledger.worker import LogWorker


def _checkpoint(world: World) -> None:
    # What the worker does every few seconds: sequence the events, sign a checkpoint.
    LogWorker(world.rt, steps=[]).run_once(force_checkpoint=True)


def _vkey(world: World) -> str:
    return str(world.http.get("/v1/log/key").json()["vkey"])


def _complete(world: World, pending: dict[str, Any]) -> dict[str, Any]:
    # What `commons wallet receipts refresh` does: the public receipt, with the event and
    # the signed entry the wallet kept.
    event_id = pending["event"]["id"]
    public = world.http.get(f"/v1/log/receipts/{event_id}")
    assert public.status_code == 200, public.text
    return {**public.json(), "event": pending["event"], "signed_entry": pending["signed_entry"]}


def _tampered(value: Any) -> Iterator[Any]:
    # Every way of changing one field: each leaf of a nested value, changed.
    if isinstance(value, bool):
        yield not value
    elif isinstance(value, int):
        yield value + 1
    elif isinstance(value, str):
        middle = len(value) // 2
        yield value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]
    elif isinstance(value, list):
        for i, item in enumerate(value):
            for changed in _tampered(item):
                yield [*value[:i], changed, *value[i + 1 :]]
    elif isinstance(value, dict):
        for key, item in value.items():
            for changed in _tampered(item):
                yield {**value, key: changed}
    elif value is None:
        yield "p1:AAAA"


def _assert_every_field_guarded(receipt: dict[str, Any], vkey: str) -> int:
    tried = 0
    for field, value in receipt.items():
        for changed in _tampered(value):
            forged = copy.deepcopy(receipt)
            forged[field] = changed
            with pytest.raises(CommonsError):
                verify_any_receipt(forged, vkey)
            tried += 1
    return tried


def test_a_revocation_receipt_verifies_at_once_and_once_covered(world: World) -> None:
    consent_id = world.consent()
    revoked = world.decide(consent_id, "revoke")
    receipt = revoked["receipt"]
    assert set(receipt) == {"format", "entry", "event", "signed_entry"}
    vkey = _vkey(world)
    pending = verify_any_receipt(receipt, vkey)
    assert isinstance(pending, PendingReceipt)
    assert pending.event_checked
    assert (pending.entry.id, pending.entry.type) == (revoked["event_id"], "consent.revoked")
    assert receipt["event"]["details"]["status"] == "REVOKED"

    _checkpoint(world)
    complete = _complete(world, receipt)
    verified = verify_any_receipt(complete, vkey)
    assert isinstance(verified, VerifiedReceipt)
    assert verified.entry_signed
    assert verified.event_checked
    assert verified.entry.id == revoked["event_id"]

    # Tampering with any field of either form is rejected.
    assert _assert_every_field_guarded(receipt, vkey) >= 10
    assert _assert_every_field_guarded(complete, vkey) >= 14
    # So is a pending receipt without its signed entry, or with another log's key.
    with pytest.raises(CommonsError):
        verify_any_receipt({k: v for k, v in receipt.items() if k != "signed_entry"}, vkey)
    other_log = "other.example/log+" + vkey.split("+", 1)[1]
    with pytest.raises(CommonsError):
        verify_any_receipt(receipt, other_log)


def test_revoke_all_hands_a_receipt_for_each(world: World) -> None:
    first, second = world.consent(), world.consent()
    done = world.http.post(
        f"/v1/borrowers/{world.borrower}/consents/revoke-all",
        json={"lender": world.lender},
        headers=world.as_borrower,
    )
    assert done.status_code == 200, done.text
    receipts = done.json()["receipts"]
    assert set(receipts) == {first, second}
    vkey = _vkey(world)
    for receipt in receipts.values():
        verified = verify_any_receipt(receipt, vkey)
        assert isinstance(verified, PendingReceipt)
        assert verified.entry.type == "consent.revoked"


def test_an_erasure_receipt_verifies_offline_with_the_subject_gone(world: World) -> None:
    world.consent()
    erased = world.http.delete(f"/v1/identities/{world.borrower}", headers=world.as_borrower)
    assert erased.status_code == 200, erased.text
    receipt = erased.json()["receipt"]
    vkey = _vkey(world)
    pending = verify_any_receipt(receipt, vkey)
    assert isinstance(pending, PendingReceipt)
    assert pending.entry.type == "subject.erased"
    # The subject is gone: their token opens nothing.
    gone = world.http.get(f"/v1/identities/{world.borrower}", headers=world.as_borrower)
    assert gone.status_code in {401, 404}
    # The receipt completes from public endpoints alone, and verifies offline.
    _checkpoint(world)
    complete = _complete(world, receipt)
    verified = verify_any_receipt(complete, vkey)
    assert isinstance(verified, VerifiedReceipt)
    assert verified.entry_signed
    assert verified.event_checked
    assert _assert_every_field_guarded(complete, vkey) >= 14
