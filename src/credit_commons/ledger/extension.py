"""Does today's checkpoint extend one kept earlier?  (``commons log verify-consistency``)

A party that kept a checkpoint of the log — a lender, a borrower's wallet, an auditor —
checks later that the log's current checkpoint is the same history grown, not another
one.  Verification, in order (each failure its own error and CLI exit code):

1. both notes are well-formed checkpoints (signed-note@v1.0.0, tlog-checkpoint@v1.0.0);
   otherwise ``NoteInvalid``/``CheckpointInvalid`` (exit 7);
2. both name the same origin: a checkpoint of another log proves nothing about this one
   (:class:`CheckpointOriginMismatch`, exit 10);
3. both are signed by the pinned log key; a tampered checkpoint fails here
   (``NoteSignatureInvalid``/``SignatureMissing``, exit 7);
4. today's tree is at least as large as the old one, and the RFC 6962 consistency proof
   (RFC 9162 §2.1.4.2) leads from the old root to today's; equal sizes need equal roots.
   Two signed roots that no proof joins are a fork — or a rollback — of the log
   (:class:`LogForked`, exit 11).

Pure: the notes, the proof and the key are parameters; fetching them is the caller's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from credit_commons.core.errors import ExitCode
from credit_commons.ledger import note as note_format
from credit_commons.ledger import rfc6962
from credit_commons.ledger.checkpoint import Checkpoint, verify_checkpoint
from credit_commons.ledger.errors import ConsistencyProofInvalid, LogError

__all__ = [
    "CheckpointOriginMismatch",
    "Extension",
    "LogForked",
    "parse_checkpoint_note",
    "verify_extension",
]


class CheckpointOriginMismatch(LogError):
    """The kept checkpoint names another log (origin) than today's."""

    code = "log.origin_mismatch"
    title = "Checkpoint of another log"
    exit_code = ExitCode.LOG_ORIGIN_MISMATCH


class LogForked(LogError):
    """Today's signed checkpoint does not extend the kept one: the log forked or was rolled
    back (both roots are signed by the log key, and no consistency proof joins them)."""

    code = "log.forked"
    title = "Log forked"
    exit_code = ExitCode.LOG_FORKED


@dataclass(frozen=True)
class Extension:
    """A verified extension: ``new`` extends ``old``."""

    old: Checkpoint
    new: Checkpoint


def parse_checkpoint_note(data: str) -> Checkpoint:
    """The checkpoint a note carries, signatures not checked yet.

    Raises ``NoteInvalid`` or ``CheckpointInvalid`` for malformed text.
    """
    return Checkpoint.parse(note_format.parse_note(data).text)


def verify_extension(
    old_note: str, new_note: str, proof: Sequence[bytes], log_vkey: str
) -> Extension:
    """Check that the checkpoint ``new_note`` extends ``old_note`` by ``proof`` (the
    consistency proof from the old size to the new one; empty when the sizes are equal or
    today's tree is smaller), both signed by ``log_vkey``.

    Raises (module docstring) ``NoteInvalid``/``CheckpointInvalid``,
    :class:`CheckpointOriginMismatch`, ``NoteSignatureInvalid``/``SignatureMissing``,
    ``VerifierKeyInvalid`` for a malformed key, or :class:`LogForked`.
    """
    # 1.
    old, new = parse_checkpoint_note(old_note), parse_checkpoint_note(new_note)
    # 2.
    if old.origin != new.origin:
        raise CheckpointOriginMismatch(
            f"the kept checkpoint is of {old.origin!r}, today's of {new.origin!r}"
        )
    # 3.
    verifier = note_format.Ed25519Verifier.from_vkey(log_vkey)
    verify_checkpoint(old_note, verifier, origin=old.origin)
    verify_checkpoint(new_note, verifier, origin=old.origin)
    # 4.
    if new.size < old.size:
        raise LogForked(
            f"today's checkpoint (size {new.size}) is smaller than the kept one "
            f"(size {old.size}): the log was rolled back"
        )
    if old.size == 0:
        return Extension(old, new)  # the empty tree is a prefix of every tree
    try:
        rfc6962.verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)
    except ConsistencyProofInvalid as e:
        raise LogForked(
            f"today's checkpoint (size {new.size}) does not extend the kept one "
            f"(size {old.size}): {e.detail}"
        ) from e
    return Extension(old, new)
