"""The receipt handed out with a withdrawal or an erasure, before a checkpoint covers its
event: the entry, the full event and the log's signed entry (ledger/signed_entry.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.core.errors import NotFoundError
from credit_commons.events import (
    EventRow,
    LogOutboxRow,
    RecordedEvent,
    event_document,
    log_entry,
)
from credit_commons.ledger.identity import LogIdentity, establish_log_identity, known_log_identity
from credit_commons.ledger.models import LogEntryRow
from credit_commons.ledger.note import sign_note
from credit_commons.ledger.schemas import PendingReceipt
from credit_commons.ledger.service import log_signer
from credit_commons.ledger.signed_entry import FORMAT, signed_entry_text
from credit_commons.runtime import Runtime

__all__ = ["pending_receipt", "pending_receipt_of"]


def pending_receipt(session: Session, rt: Runtime, event_id: str) -> PendingReceipt:
    """The receipt of an event recorded in this transaction (or earlier): its entry, the
    full event and the log's signed entry — ``index``, ``inclusion_proof`` and
    ``checkpoint`` follow once a checkpoint covers it (``GET /v1/log/receipts/{id}``).

    Raises :class:`NotFoundError` for an unknown event, and the log's identity errors.
    """
    row = session.get(EventRow, event_id)
    entry = session.scalar(select(LogOutboxRow.entry).where(LogOutboxRow.event_id == event_id))
    if entry is None:
        entry = session.scalar(select(LogEntryRow.entry).where(LogEntryRow.event_id == event_id))
    if row is None or entry is None:
        raise NotFoundError("no such event")
    return _receipt(session, rt, RecordedEvent.from_row(row), bytes(entry).decode("utf-8"))


def pending_receipt_of(session: Session, rt: Runtime, event: RecordedEvent) -> PendingReceipt:
    """:func:`pending_receipt` of an event this transaction just recorded (``record_event``'s
    answer), without reading it back: its log entry is a function of the event
    (``events.log_entry``, the bytes ``record_event`` wrote to the outbox), and the log's
    identity is the one this process established (read in this session otherwise).

    Raises the log's identity errors.
    """
    return _receipt(session, rt, event, log_entry(event).decode("utf-8"))


def _identity(session: Session, rt: Runtime) -> LogIdentity:
    # The identity this process established (a server does at start); else in the request's
    # own session: the log's first use may record it, and on SQLite a second unit of work
    # would wait for this one's write lock.
    known = known_log_identity(rt)
    if known is not None:
        return known
    return establish_log_identity(session, rt.key_store, rt.settings, rt.clock.now())


def _receipt(session: Session, rt: Runtime, event: RecordedEvent, text: str) -> PendingReceipt:
    identity = _identity(session, rt)
    # The signer is read each time: a newest log key other than the recorded one refuses.
    note = sign_note(
        signed_entry_text(identity.origin, text), log_signer(session, rt.key_store, identity)
    )
    return PendingReceipt(format=FORMAT, entry=text, event=event_document(event), signed_entry=note)
