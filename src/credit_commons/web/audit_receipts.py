"""A receipt's checks on the public log explorer (``/audit/receipt``), each with its result
in plain words: signed by this log, the receipt's own proof, the entry in today's log, and
today's checkpoint extending the receipt's — every proof checked by the ledger's functions
(``verify_checkpoint``, ``verify_any_receipt``, ``rfc6962.verify_inclusion``,
``verify_extension``) over the proofs its service builds.  Shared pieces are
:mod:`credit_commons.web.audit_checks`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject, b64_decode
from credit_commons.core.errors import CommonsError, NotFoundError
from credit_commons.ledger import rfc6962
from credit_commons.ledger import service as log_service
from credit_commons.ledger.checkpoint import verify_checkpoint
from credit_commons.ledger.errors import (
    CheckpointInvalid,
    InclusionProofInvalid,
    NoteInvalid,
    NoteSignatureInvalid,
    SignatureMissing,
)
from credit_commons.ledger.extension import (
    CheckpointOriginMismatch,
    LogForked,
    parse_checkpoint_note,
    verify_extension,
)
from credit_commons.ledger.identity import LogIdentity, log_identity
from credit_commons.ledger.note import Ed25519Verifier
from credit_commons.ledger.receipts import PendingReceipt, ReceiptInvalid, verify_any_receipt
from credit_commons.ledger.signed_entry import SignedEntryInvalid
from credit_commons.runtime import Runtime
from credit_commons.web.audit_checks import (
    FAILED,
    NOT_CHECKED,
    PASSED,
    WAITING,
    Check,
    WitnessLine,
    known_witnesses,
    proof_hashes,
    witness_lines,
)
from credit_commons.web.i18n import N_

__all__ = ["ReceiptResult", "check_receipt", "public_receipt"]


@dataclass(frozen=True)
class ReceiptResult:
    """A receipt's checks, what it says (``entry``: id, type, at, digest; ``index``), the
    witnesses of its checkpoint and the verdict: ``valid``, ``pending`` or ``invalid``."""

    checks: tuple[Check, ...]
    entry: Mapping[str, str]
    index: int | None
    witnesses: tuple[WitnessLine, ...]
    verdict: str


_SIGNATURE = N_("Signed by this log")
_PROOF = N_("The receipt's own proof")
_TODAY = N_("In today's log")
_HISTORY = N_("Same history as today")
_SKIPPED = N_("Not checked: an earlier check failed.")


def _signature_check(document: Mapping[str, Any], identity: LogIdentity) -> Check:
    if "checkpoint" not in document and "signed_entry" in document:
        return Check(
            _SIGNATURE,
            NOT_CHECKED,
            N_("This receipt has no checkpoint yet; its signed entry is checked below."),
        )
    try:
        verify_checkpoint(str(document["checkpoint"]), Ed25519Verifier.from_vkey(identity.vkey))
    except (NoteInvalid, CheckpointInvalid):
        return Check(
            _SIGNATURE, FAILED, N_("The checkpoint in the receipt is not a signed checkpoint.")
        )
    except NoteSignatureInvalid:
        return Check(
            _SIGNATURE,
            FAILED,
            N_("The log's signature does not match: the checkpoint in the receipt was changed."),
        )
    except SignatureMissing:
        return Check(
            _SIGNATURE, FAILED, N_("The checkpoint in the receipt is not signed by this log.")
        )
    return Check(_SIGNATURE, PASSED, N_("The checkpoint in the receipt is signed by this log."))


def _proof_check(document: Mapping[str, Any], identity: LogIdentity) -> Check:
    try:
        verified = verify_any_receipt(dict(document), identity.vkey)
    except InclusionProofInvalid:
        return Check(
            _PROOF,
            FAILED,
            N_(
                "The proof does not lead from the entry to the checkpoint: the entry, "
                "its position or the proof was changed."
            ),
        )
    except SignedEntryInvalid:
        return Check(
            _PROOF,
            FAILED,
            N_("The log's signature on the entry does not match: the entry was changed."),
        )
    except ReceiptInvalid:
        return Check(
            _PROOF,
            FAILED,
            N_("The entry or the event in the receipt is malformed or does not match."),
        )
    except CommonsError:
        return Check(_PROOF, FAILED, N_("The receipt's proof is malformed."))
    if isinstance(verified, PendingReceipt):
        return Check(
            _PROOF,
            WAITING,
            N_(
                "The log signed this entry before a checkpoint covered it; the check "
                "below finds it in today's log."
            ),
        )
    if verified.event_checked:
        return Check(
            _PROOF,
            PASSED,
            N_(
                "The proof leads from the entry to the checkpoint, and the event matches the entry."
            ),
        )
    return Check(_PROOF, PASSED, N_("The proof leads from the entry to the checkpoint."))


def _today_check(
    session: Session,
    runtime: Runtime,
    identity: LogIdentity,
    document: Mapping[str, Any],
    event_id: str,
) -> Check:
    # Today's log holds the same entry at the same position: the service's receipt of the
    # event (its index and proof at the latest checkpoint), checked against the signed root.
    try:
        today = log_service.receipt(
            session, event_id, include_event=False, cache=runtime.tile_cache
        )
    except NotFoundError:
        return Check(
            _TODAY, WAITING, N_("Today's log has no checkpointed entry for this event yet.")
        )
    index = document.get("index")
    if index is not None and index != today.index:
        return Check(
            _TODAY,
            FAILED,
            N_("Today's log holds this event at position %(index)s, not where the receipt says."),
            {"index": today.index},
        )
    checkpoint = verify_checkpoint(today.checkpoint, Ed25519Verifier.from_vkey(identity.vkey))
    leaf = rfc6962.leaf_hash(str(document["entry"]).encode("utf-8"))
    try:
        rfc6962.verify_inclusion(
            leaf,
            today.index,
            checkpoint.size,
            proof_hashes(today.inclusion_proof),
            checkpoint.root_hash,
        )
    except InclusionProofInvalid:
        return Check(
            _TODAY,
            FAILED,
            N_("Today's log does not hold this entry as the receipt writes it."),
        )
    return Check(
        _TODAY,
        PASSED,
        N_("Proved: the log's latest checkpoint (size %(size)s) holds this entry."),
        {"size": checkpoint.size},
    )


def _history_check(
    session: Session, runtime: Runtime, identity: LogIdentity, old_note: str
) -> Check:
    # The receipt's checkpoint and today's are one history (``verify_extension``).
    row = log_service.latest_checkpoint(session)
    if row is None:
        return Check(_HISTORY, WAITING, N_("The log has no checkpoint yet."))
    new_note = log_service.checkpoint_with_cosignatures(session, row)
    old = parse_checkpoint_note(old_note)
    proof: list[bytes] = []
    if 0 < old.size < row.size:
        found = log_service.consistency_proof(session, old.size, row.size, runtime.tile_cache)
        proof = [b64_decode(h) for h in found.proof]
    try:
        verify_extension(old_note, new_note, proof, identity.vkey)
    except (LogForked, CheckpointOriginMismatch):
        return Check(
            _HISTORY,
            FAILED,
            N_("Today's checkpoint does not extend the receipt's: the log's history changed."),
        )
    return Check(
        _HISTORY,
        PASSED,
        N_("Today's checkpoint (size %(new)s) extends the receipt's (size %(old)s)."),
        {"new": row.size, "old": old.size},
    )


def _entry_fields(document: Mapping[str, Any]) -> dict[str, str]:
    try:
        entry = json.loads(str(document.get("entry", "")))
    except ValueError:
        return {}
    if not isinstance(entry, dict):
        return {}
    return {k: str(entry[k]) for k in ("id", "type", "at", "digest") if k in entry}


def check_receipt(runtime: Runtime, document: Mapping[str, Any]) -> ReceiptResult:
    """Every check of ``document`` (a receipt object with a string ``entry``, and a string
    ``checkpoint`` or ``signed_entry``; the caller checked its shape), in order: the log's
    signature, the receipt's own proof (the whole receipt, ``verify_any_receipt``), the
    entry in today's log, and today's checkpoint extending the receipt's.  A check after a
    failed one is not run."""
    identity = log_identity(runtime)
    fields = _entry_fields(document)
    checks = [_signature_check(document, identity)]
    failed = checks[0].status == FAILED
    checks.append(
        Check(_PROOF, NOT_CHECKED, _SKIPPED) if failed else _proof_check(document, identity)
    )
    failed = failed or checks[1].status == FAILED
    complete = "checkpoint" in document
    with transaction(runtime.read_sessions) as session:
        if failed or "id" not in fields:
            checks.append(Check(_TODAY, NOT_CHECKED, _SKIPPED))
        else:
            checks.append(_today_check(session, runtime, identity, document, fields["id"]))
            failed = checks[2].status == FAILED
        if complete:
            checks.append(
                Check(_HISTORY, NOT_CHECKED, _SKIPPED)
                if failed
                else _history_check(session, runtime, identity, str(document["checkpoint"]))
            )
    witnesses: tuple[WitnessLine, ...] = ()
    if complete and checks[0].status == PASSED:
        witnesses, _ = witness_lines(
            str(document["checkpoint"]), identity, known_witnesses(runtime)
        )
    statuses = {c.status for c in checks}
    verdict = "invalid" if FAILED in statuses else "pending" if WAITING in statuses else "valid"
    index = document.get("index")
    return ReceiptResult(
        checks=tuple(checks),
        entry=fields,
        index=index if isinstance(index, int) and not isinstance(index, bool) else None,
        witnesses=witnesses,
        verdict=verdict,
    )


def public_receipt(runtime: Runtime, event_id: str) -> JsonObject | None:
    """The public receipt of ``event_id`` as the JSON document ``GET /v1/log/receipts/{id}``
    gives (the same document a pasted receipt is checked as), or None while no checkpoint
    covers the event."""
    with transaction(runtime.read_sessions) as session:
        try:
            found = log_service.receipt(
                session, event_id, include_event=False, cache=runtime.tile_cache
            )
        except NotFoundError:
            return None
    document: JsonObject = found.model_dump(mode="json", exclude_none=True)
    return document
