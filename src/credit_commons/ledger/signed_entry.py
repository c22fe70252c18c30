"""Signed entries: the log's signature on an event's entry before a checkpoint covers it.

A withdrawal or erasure receipt is handed to the borrower in the answer to the request,
seconds before the worker's next checkpoint includes the event.  So that it proves
something at once, the log signs the entry with its own key, as a C2SP signed note
(signed-note@v1.0.0) whose text is::

    credit-commons/signed-entry/v1
    <origin>
    <the entry: the canonical JSON event reference>

— the log's promise that this entry is in its log (a checkpoint will include it).  The
text never parses as a checkpoint (tlog-checkpoint: origin, decimal size, base64 root hash;
here the third line is JSON), and a checkpoint's text never starts with the marker line, so
neither can pass for the other under the same key.  The signature is made inside
the transaction that records the event, and the answer carrying it is sent only once
that transaction has committed.
"""

from __future__ import annotations

from credit_commons.core.errors import CommonsError
from credit_commons.ledger.errors import LogError
from credit_commons.ledger.note import Ed25519Verifier, verify_note

__all__ = ["FORMAT", "MARKER", "SignedEntryInvalid", "signed_entry_text", "verify_signed_entry"]

FORMAT = "credit-commons-receipt/v1"
MARKER = "credit-commons/signed-entry/v1"


class SignedEntryInvalid(LogError):
    """A signed entry that is not the log's signature on this entry."""

    code = "log.signed_entry_invalid"
    title = "Signed entry invalid"


def signed_entry_text(origin: str, entry: str) -> str:
    """The note text the log signs for ``entry`` (a one-line JSON event reference)."""
    return f"{MARKER}\n{origin}\n{entry}\n"


def verify_signed_entry(note: str, entry: str, log_vkey: str) -> str:
    """Check that ``note`` is the log's signed entry for exactly ``entry``; returns the
    log's origin.

    1. The note verifies under the log key (signed-note@v1.0.0).
    2. Its text is the marker, the key's own name (the origin) and ``entry``, nothing else.

    Raises :class:`SignedEntryInvalid`.
    """
    try:
        verifier = Ed25519Verifier.from_vkey(log_vkey)
        opened = verify_note(note, [verifier])
    except CommonsError as e:
        raise SignedEntryInvalid(f"the signed entry does not verify: {e.detail}") from e
    if opened.text != signed_entry_text(verifier.name, entry):
        raise SignedEntryInvalid("the signed entry is not this entry's")
    return verifier.name
