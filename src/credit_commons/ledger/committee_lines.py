"""Which committee lines of a checkpoint note verify: what a full node keeps of the
committee's cosignature before it serves the note (docs/federation.md, "The committee's
cosignature on a node").

A committee line is told from the log's and the witnesses' lines by its size: a BLS12-381
minimal-pubkey-size signature is a compressed G2 point of 96 bytes
(draft-irtf-cfrg-bls-signature-05 §2.1), the log's Ed25519 signature 64 bytes and a
witness's cosignature 72 (tlog-cosignature: a timestamp and an Ed25519 signature); a line
named by a pinned committee key is a committee line whatever its size.  A committee line
is kept only when its key name and ID are those of a committee key the
caller pinned and its signature verifies under that key over the note's text; any other is
removed.  Pure: a note and the pinned keys in, the note with only verified committee lines
out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from credit_commons.core.errors import CommonsError
from credit_commons.ledger.committee import CommitteeVerifier
from credit_commons.ledger.note import Note, parse_note

__all__ = ["COMMITTEE_SIGNATURE_BYTES", "CommitteeLines", "sort_committee_lines"]

COMMITTEE_SIGNATURE_BYTES = 96
"""A committee line's signature: a compressed BLS12-381 G2 point."""


@dataclass(frozen=True)
class CommitteeLines:
    """A note with only its verified committee lines (``note``), how many it kept
    (``verified``) and how many it removed (``dropped``: no pinned key of that name and ID,
    or a signature that does not verify under it)."""

    note: str
    verified: int
    dropped: int


def sort_committee_lines(note: str, keys: Sequence[CommitteeVerifier]) -> CommitteeLines:
    """``note`` with each committee line kept only if it verifies under one of ``keys``.

    The log's and the witnesses' lines are left as they are (the caller verifies the log's).
    Raises :class:`~credit_commons.ledger.errors.NoteInvalid` for a malformed note.
    """
    parsed = parse_note(note)
    text = parsed.text.encode("utf-8")
    by_id = {(key.name, key.key_id): key for key in keys}
    kept, verified, dropped = [], 0, 0
    for line in parsed.signatures:
        key = by_id.get((line.name, line.key_id))
        if key is None and len(line.signature) != COMMITTEE_SIGNATURE_BYTES:
            kept.append(line)
            continue
        try:
            if key is None:
                raise LookupError(line.name)
            key.verify(text, line.signature)
        except (LookupError, CommonsError):
            dropped += 1
            continue
        kept.append(line)
        verified += 1
    if not dropped:
        return CommitteeLines(note, verified, 0)
    return CommitteeLines(Note(parsed.text, tuple(kept)).format(), verified, dropped)
