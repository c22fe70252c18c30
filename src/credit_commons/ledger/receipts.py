"""Offline verification of log receipts: no database, no network.

A receipt (``credit-commons-receipt/v1``) carries the log entry, its leaf index, the
inclusion proof and the cosigned checkpoint, and — for parties entitled to it — the full
event document whose digest the entry commits to.  Verification, in order:

1. the checkpoint note is signed by the log key (signed-note@v1.0.0) and, when witness keys
   are given, cosigned by at least ``k`` of them (tlog-cosignature@v1.0.1);
2. the entry is well-formed JSON (``{"v":1,"id","type","at","digest"}``) and the leaf hash
   is SHA-256(0x00 ‖ entry) (RFC 9162 §2.1.1);
3. the inclusion proof leads from that leaf at that index to the checkpoint's root
   (RFC 9162 §2.1.3.2);
4. if the event document is present, its RFC 8785 digest equals the entry's ``digest`` and
   its id, type and time equal the entry's;
5. if the log's signed entry is present (``signed_entry``, ledger/signed_entry.py: withdrawal
   and erasure receipts carry it from the moment they are handed out), it is the log key's
   signature on exactly this entry.

It returns only when every step passed; otherwise it raises the step's typed error.

A receipt handed out before a checkpoint covered its event has no ``index``,
``inclusion_proof`` or ``checkpoint`` yet, only the entry, the event and the signed entry:
:func:`verify_any_receipt` verifies it (steps 2, 4 and 5) as a :class:`PendingReceipt`, and
any complete receipt with :func:`verify_receipt`.  ``commons log verify-receipt`` uses it.

Step 1 without witnesses — the log's signature on the checkpoint note — is remembered for
the last :data:`CHECKPOINTS_REMEMBERED` (note text, log key) pairs verified in this process:
a pure function of exactly those two strings, so a note that differs by one byte, or
another key, is verified afresh, and a note that failed is never remembered.  The receipts
of one page (the borrower's history: twenty against the one latest checkpoint) then check
that signature once, not twenty times.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from credit_commons.core.encoding import JsonObject, b64_decode, json_decode
from credit_commons.core.errors import CommonsError, ValidationError
from credit_commons.events import event_digest
from credit_commons.ledger import rfc6962
from credit_commons.ledger.checkpoint import Checkpoint, verify_checkpoint
from credit_commons.ledger.cosignature import CosignatureVerifier, verify_cosigned
from credit_commons.ledger.errors import InclusionProofInvalid, LogError
from credit_commons.ledger.note import Ed25519Verifier
from credit_commons.ledger.signed_entry import verify_signed_entry

__all__ = [
    "CHECKPOINTS_REMEMBERED",
    "EntryReference",
    "PendingReceipt",
    "ReceiptInvalid",
    "VerifiedReceipt",
    "verify_any_receipt",
    "verify_receipt",
]


CHECKPOINTS_REMEMBERED = 64
"""How many verified (checkpoint note, log key) pairs step 1 remembers (see the module)."""


class ReceiptInvalid(LogError):
    """A receipt that is malformed or whose event does not match its entry."""

    code = "log.receipt_invalid"
    title = "Receipt invalid"


@dataclass(frozen=True, slots=True)
class EntryReference:
    """A log entry: the reference ``{"v": 1, "id", "type", "at", "digest"}`` to an event,
    ``digest`` the SHA-256 of its RFC 8785 document (docs/log.md)."""

    v: int
    id: str
    type: str
    at: str
    digest: str


@dataclass(frozen=True)
class VerifiedReceipt:
    """What a verified receipt proves."""

    checkpoint: Checkpoint
    index: int
    entry: EntryReference
    witnesses: tuple[str, ...]
    event_checked: bool
    entry_signed: bool = False


@dataclass(frozen=True)
class PendingReceipt:
    """What a receipt not yet covered by a checkpoint proves: the log (``origin``) signed
    this entry, and — when ``event_checked`` — the event is the one the entry commits to."""

    origin: str
    entry: EntryReference
    event_checked: bool


def _format(receipt: Any) -> JsonObject:
    if not isinstance(receipt, dict) or receipt.get("format") != "credit-commons-receipt/v1":
        raise ReceiptInvalid("not a credit-commons-receipt/v1 document")
    return receipt


def _entry(entry_text: str) -> EntryReference:
    # Step 2's first half: the entry is an event reference.
    try:
        entry = json_decode(entry_text)
    except ValidationError as e:
        raise ReceiptInvalid("entry is not JSON") from e
    if not isinstance(entry, dict) or set(entry) != {"v", "id", "type", "at", "digest"}:
        raise ReceiptInvalid("entry is not an event reference")
    texts = (entry["id"], entry["type"], entry["at"], entry["digest"])
    if not all(isinstance(t, str) for t in texts) or type(entry["v"]) is not int:
        raise ReceiptInvalid("entry is not an event reference")
    return EntryReference(
        v=entry["v"], id=entry["id"], type=entry["type"], at=entry["at"], digest=entry["digest"]
    )


def _event(receipt: JsonObject, entry: EntryReference) -> bool:
    # Step 4: the event, when present, is the one the entry commits to.
    event = receipt.get("event")
    if event is None:
        return False
    if not isinstance(event, dict):
        raise ReceiptInvalid("event must be an object")
    if event_digest(event) != entry.digest:
        raise ReceiptInvalid("event does not match the entry's digest")
    if (event.get("id"), event.get("type"), event.get("at")) != (entry.id, entry.type, entry.at):
        raise ReceiptInvalid("event id, type or time differ from the entry")
    return True


def _signed_entry(receipt: JsonObject, entry_text: str, log_vkey: str) -> bool:
    # Step 5: the log's signed entry, when present, is its signature on this entry.
    note = receipt.get("signed_entry")
    if note is None:
        return False
    if not isinstance(note, str):
        raise ReceiptInvalid("signed_entry must be a signed note")
    verify_signed_entry(note, entry_text, log_vkey)
    return True


@lru_cache(maxsize=CHECKPOINTS_REMEMBERED)
def _log_checkpoint(note_text: str, log_vkey: str) -> Checkpoint:
    # Step 1 without witnesses, remembered per (note, key) -- only when it passed: a raise
    # is not cached.  The Checkpoint is frozen, so callers cannot alter what is shared.
    return verify_checkpoint(note_text, Ed25519Verifier.from_vkey(log_vkey))


def verify_any_receipt(
    receipt: Any, log_vkey: str, witness_vkeys: list[str] | None = None, k: int | None = None
) -> VerifiedReceipt | PendingReceipt:
    """Verify a complete receipt (:func:`verify_receipt`) or, for one without a
    checkpoint yet, its signed entry and event (a :class:`PendingReceipt`).

    Raises what :func:`verify_receipt` raises, and ``SignedEntryInvalid``.
    """
    document = _format(receipt)
    if "checkpoint" in document or "signed_entry" not in document:
        return verify_receipt(document, log_vkey, witness_vkeys, k)
    if {"index", "inclusion_proof"} & set(document):
        raise ReceiptInvalid("a receipt with an inclusion proof needs its checkpoint")
    entry_text = document.get("entry")
    if not isinstance(entry_text, str):
        raise ReceiptInvalid("receipt is missing a member")
    entry = _entry(entry_text)
    origin = verify_signed_entry(str(document["signed_entry"]), entry_text, log_vkey)
    return PendingReceipt(origin, entry, _event(document, entry))


def verify_receipt(
    receipt: Any, log_vkey: str, witness_vkeys: list[str] | None = None, k: int | None = None
) -> VerifiedReceipt:
    """Verify ``receipt`` (parsed JSON) against the log's verifier key and witnesses.

    ``k`` defaults to all given witnesses.  Raises :class:`ReceiptInvalid`,
    ``NoteInvalid``/``NoteSignatureInvalid``/``QuorumNotMet``/``CheckpointInvalid`` for the
    checkpoint, ``InclusionProofInvalid`` for the proof.
    """
    receipt = _format(receipt)
    try:
        note_text = str(receipt["checkpoint"])
        entry_text = str(receipt["entry"])
        index = receipt["index"]
        proof = [rfc6962.Hash(b64_decode(h)) for h in receipt["inclusion_proof"]]
    except (KeyError, TypeError) as e:
        raise ReceiptInvalid("receipt is missing a member") from e
    except CommonsError as e:
        raise ReceiptInvalid("receipt has a malformed proof hash") from e
    if isinstance(index, bool) or not isinstance(index, int):
        raise ReceiptInvalid("receipt index must be an integer")

    # Step 1: the checkpoint.
    cosigners: tuple[str, ...] = ()
    if witness_vkeys:
        log_verifier = Ed25519Verifier.from_vkey(log_vkey)
        witnesses = [CosignatureVerifier.from_vkey(v) for v in witness_vkeys]
        cosigned = verify_cosigned(note_text, log_verifier, witnesses, k or len(witnesses))
        checkpoint = cosigned.checkpoint
        cosigners = tuple(c.name for c in cosigned.cosigners)
    else:
        checkpoint = _log_checkpoint(note_text, log_vkey)

    # Step 2: the entry.
    entry = _entry(entry_text)
    leaf = rfc6962.leaf_hash(entry_text.encode("utf-8"))

    # Step 3: inclusion.
    if not 0 <= index < checkpoint.size:
        raise InclusionProofInvalid("leaf index is outside the checkpoint's tree")
    rfc6962.verify_inclusion(leaf, index, checkpoint.size, proof, checkpoint.root_hash)

    # Steps 4 and 5: the event and the signed entry, when present.
    event_checked = _event(receipt, entry)
    entry_signed = _signed_entry(receipt, entry_text, log_vkey)
    return VerifiedReceipt(checkpoint, index, entry, cosigners, event_checked, entry_signed)
