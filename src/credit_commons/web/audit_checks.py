"""What the public log explorer (``/audit``) shows, computed with the ledger's own functions:
the latest checkpoint and its witnesses, one entry, and whether a kept checkpoint is
extended by today's (a receipt's checks are :mod:`credit_commons.web.audit_receipts`).

Every proof is checked by the ledger (``ledger.receipts.verify_any_receipt``,
``ledger.checkpoint.verify_checkpoint``, ``ledger.extension.verify_extension``,
``ledger.rfc6962.verify_inclusion``, ``ledger.note.verify_note``), over the proofs the
ledger's service builds — the functions ``/v1/log/…`` and ``commons log verify-…`` use;
nothing here hashes a tree.  Each result is a list of :class:`Check` whose texts are
``N_``-marked msgids, translated where they are shown (``web/templates/audit/``).

The witness keys the platform knows are ``COMMONS_LOG_WITNESSES``; a cosignature by any
other key is shown but not checked (nobody here can say whose key it is).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64_decode
from credit_commons.core.errors import CommonsError, NotFoundError
from credit_commons.ledger import rfc6962
from credit_commons.ledger import service as log_service
from credit_commons.ledger.checkpoint import Checkpoint, verify_checkpoint
from credit_commons.ledger.cosignature import CosignatureVerifier, TimestampedSignature
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
from credit_commons.ledger.extension_inputs import local_extension_inputs
from credit_commons.ledger.identity import LogIdentity, log_identity
from credit_commons.ledger.note import Ed25519Verifier, parse_note, verify_note
from credit_commons.ledger.steps import parse_witnesses
from credit_commons.runtime import Runtime
from credit_commons.web.i18n import N_

__all__ = [
    "FAILED",
    "NOT_CHECKED",
    "PASSED",
    "WAITING",
    "Check",
    "EntryView",
    "ExtensionResult",
    "LatestView",
    "WitnessLine",
    "check_extension",
    "known_witnesses",
    "latest_checkpoint",
    "log_origin",
    "look_up_entry",
    "proof_hashes",
    "witness_lines",
]

PASSED, FAILED, NOT_CHECKED, WAITING = "passed", "failed", "not-checked", "waiting"


@dataclass(frozen=True)
class Check:
    """One check and its result: ``title`` and ``detail`` are msgids (``detail`` with
    named placeholders filled from ``values``); ``status`` one of :data:`PASSED`,
    :data:`FAILED`, :data:`NOT_CHECKED`, :data:`WAITING`."""

    title: str
    status: str
    detail: str
    values: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class WitnessLine:
    """A cosignature on a checkpoint: the witness's name and key id, the time it states
    (None when unreadable), and ``status``: ``verified``, ``invalid`` or ``unknown`` (a key
    the platform does not know, so not checked)."""

    name: str
    key_id: str
    time: datetime | None
    status: str


@dataclass(frozen=True)
class LatestView:
    """The latest checkpoint as the overview page shows it."""

    origin: str
    size: int
    root: str
    created_at: datetime
    note: str
    log_key: str
    signed: bool
    witnesses: tuple[WitnessLine, ...]
    silent: tuple[str, ...]  # known witnesses that did not cosign it


@dataclass(frozen=True)
class EntryView:
    """A log entry as the public log holds it, and whether the latest checkpoint proves it."""

    index: int
    event_id: str
    type: str
    at: str
    digest: str
    leaf_hash: str
    check: Check


@dataclass(frozen=True)
class ExtensionResult:
    """Whether today's checkpoint extends a kept one: ``outcome`` is ``consistent``,
    ``inconsistent``, ``other-log``, ``bad-signature``, ``malformed`` or ``no-checkpoint``;
    ``old`` and ``new`` are the checkpoints when they could be read."""

    outcome: str
    old: Checkpoint | None = None
    new: Checkpoint | None = None
    new_note: str = ""
    technical: str = ""


def _aware(moment: datetime) -> datetime:
    # SQLite gives naive datetimes back; every stored time is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def known_witnesses(runtime: Runtime) -> dict[tuple[str, int], CosignatureVerifier]:
    endpoints = parse_witnesses(list(runtime.settings.log_witnesses))
    return {(e.verifier.name, e.verifier.key_id): e.verifier for e in endpoints}


def _stated_time(signature: bytes) -> datetime | None:
    try:
        stamp = TimestampedSignature.from_bytes(signature).timestamp
        return datetime.fromtimestamp(stamp, UTC)
    except (NoteSignatureInvalid, OverflowError, ValueError, OSError):
        return None  # not a cosignature/v1 signature, or a time no calendar holds


def witness_lines(
    note: str, identity: LogIdentity, known: Mapping[tuple[str, int], CosignatureVerifier]
) -> tuple[tuple[WitnessLine, ...], tuple[str, ...]]:
    """The cosignatures on ``note`` (every signature but the log's), each checked with the
    witness key the platform knows by that name and key id (``ledger.note.verify_note``),
    and the names of known witnesses that did not cosign.  Raises ``NoteInvalid``."""
    parsed = parse_note(note)
    lines: list[WitnessLine] = []
    for signature in parsed.signatures:
        if (signature.name, signature.key_id) == (identity.origin, identity.note_key_id):
            continue
        witness = known.get((signature.name, signature.key_id))
        status = "unknown"
        if witness is not None:
            try:
                # Only this witness's key is known to this call: its line alone is checked.
                verify_note(note, [witness])
                status = "verified"
            except CommonsError:
                status = "invalid"
        time = _stated_time(signature.signature)
        lines.append(WitnessLine(signature.name, f"{signature.key_id:08x}", time, status))
    present = {(s.name, s.key_id) for s in parsed.signatures}
    silent = tuple(sorted(name for name, kid in known if (name, kid) not in present))
    return tuple(lines), silent


def log_origin(runtime: Runtime) -> str:
    """The log's recorded origin (its name, the first line of its checkpoints)."""
    return log_identity(runtime).origin


def latest_checkpoint(runtime: Runtime) -> LatestView | None:
    """The latest checkpoint with its cosignatures, checked, or None before the first."""
    identity = log_identity(runtime)
    with transaction(runtime.read_sessions) as session:
        row = log_service.latest_checkpoint(session)
        if row is None:
            return None
        note = log_service.checkpoint_with_cosignatures(session, row)
        created_at = _aware(row.created_at)
    verifier = Ed25519Verifier.from_vkey(identity.vkey)
    try:
        checkpoint, signed = verify_checkpoint(note, verifier), True
    except CommonsError:
        checkpoint, signed = parse_checkpoint_note(note), False
    lines, silent = witness_lines(note, identity, known_witnesses(runtime))
    return LatestView(
        origin=checkpoint.origin,
        size=checkpoint.size,
        root=checkpoint.root_hash.b64(),
        created_at=created_at,
        note=note,
        log_key=identity.vkey,
        signed=signed,
        witnesses=lines,
        silent=silent,
    )


# -- one entry ------------------------------------------------------------------------------


def proof_hashes(encoded: Sequence[str]) -> list[rfc6962.Hash]:
    return [rfc6962.Hash(b64_decode(h)) for h in encoded]


def _inclusion_in_latest(
    session: Session, runtime: Runtime, identity: LogIdentity, index: int, leaf: rfc6962.Hash
) -> Check:
    # The leaf at ``index`` is in the latest checkpoint's tree: the service's proof, checked
    # against the root the log signed.
    title = N_("In the latest checkpoint")
    row = log_service.latest_checkpoint(session)
    if row is None or index >= row.size:
        return Check(title, WAITING, N_("The next checkpoint will include this entry."))
    checkpoint = verify_checkpoint(row.note, Ed25519Verifier.from_vkey(identity.vkey))
    proof = log_service.inclusion_proof(session, index, checkpoint.size, runtime.tile_cache)
    try:
        rfc6962.verify_inclusion(
            leaf, index, checkpoint.size, proof_hashes(proof.proof), checkpoint.root_hash
        )
    except InclusionProofInvalid:
        return Check(
            title,
            FAILED,
            N_("The proof does not lead to the root the log signed at size %(size)s."),
            {"size": checkpoint.size},
        )
    return Check(
        title,
        PASSED,
        N_("Proved: this entry is in the log's signed checkpoint of size %(size)s."),
        {"size": checkpoint.size},
    )


def look_up_entry(runtime: Runtime, index: int) -> EntryView | int:
    """Entry ``index`` of the public log with its inclusion in the latest checkpoint, or the
    number of entries the log holds when there is no such entry yet."""
    identity = log_identity(runtime)
    with transaction(runtime.read_sessions) as session:
        size, _ = log_service.log_state(session)
        if index >= size:
            return size
        (found,) = log_service.entries(session, index, index + 1)
        leaf = rfc6962.Hash(b64_decode(found.leaf_hash))
        check = _inclusion_in_latest(session, runtime, identity, index, leaf)
    entry = found.entry
    return EntryView(
        index=index,
        event_id=str(entry.get("id", "")),
        type=str(entry.get("type", "")),
        at=str(entry.get("at", "")),
        digest=str(entry.get("digest", "")),
        leaf_hash=found.leaf_hash,
        check=check,
    )


# -- a kept checkpoint ----------------------------------------------------------------------


def check_extension(runtime: Runtime, note: str) -> ExtensionResult:
    """Whether today's checkpoint extends the kept checkpoint ``note`` (a signed note), as
    ``commons log verify-consistency`` decides it: readable, of this log, signed by its
    key, joined to today's by a consistency proof."""
    try:
        old = parse_checkpoint_note(note)
    except (NoteInvalid, CheckpointInvalid) as e:
        return ExtensionResult("malformed", technical=e.detail)
    identity = log_identity(runtime)
    if old.origin != identity.origin:
        return ExtensionResult("other-log", old=old)
    try:
        vkey, new_note, proof = local_extension_inputs(runtime, old.size, None)
    except NotFoundError:
        return ExtensionResult("no-checkpoint", old=old)
    new = parse_checkpoint_note(new_note)
    try:
        verify_extension(note, new_note, proof, vkey)
    except CheckpointOriginMismatch:
        return ExtensionResult("other-log", old=old, new=new)
    except (NoteSignatureInvalid, SignatureMissing) as e:
        return ExtensionResult("bad-signature", old=old, new=new, technical=e.detail)
    except LogForked as e:
        return ExtensionResult("inconsistent", old=old, new=new, technical=e.detail)
    except (NoteInvalid, CheckpointInvalid) as e:
        return ExtensionResult("malformed", old=old, technical=e.detail)
    return ExtensionResult("consistent", old=old, new=new, new_note=new_note)
