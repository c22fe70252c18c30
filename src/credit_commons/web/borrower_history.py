"""``/borrower/history``: who saw what — every access to the borrower's data, allowed and
refused, newest first, a page at a time, each with a mark the server checked.

The entries are what the API's ``GET /v1/borrowers/{token}/access-history`` answers
(``consent.history.access_history``, with the signed-in borrower as principal).  For each,
the server verifies the receipt the history carries with the ledger's public, offline
verifier (``ledger.verify_receipt``) against the log's own key (``log_identity``): the
checkpoint's signature, the leaf hash of the entry, the inclusion proof of that leaf against
the latest signed checkpoint, and the event's digest against the entry.  The mark says
"verified in the public log" only when every step passed; "waiting for the public log"
while no checkpoint covers the event yet; and "the check failed" — shown, never hidden —
when any step failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from credit_commons.consent import history
from credit_commons.consent.schemas import AccessRecord
from credit_commons.core.clock import utc
from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError
from credit_commons.ledger import verify_receipt
from credit_commons.ledger.identity import log_identity
from credit_commons.runtime import Runtime
from credit_commons.web import N_, page_router, render
from credit_commons.web.borrower_consents import Me, borrower_principal
from credit_commons.web.borrower_words import OPERATIONS, REASONS, word

__all__ = ["PAGE_SIZE", "Access", "LogMark", "check_receipt", "router"]

router = page_router(prefix="/borrower")
PAGE_SIZE = 20
"""Accesses per page."""
Before = Annotated[str | None, Query(pattern=r"^[a-z]{2,8}_[0-9A-Z]{26}$")]

VERIFIED, PENDING, FAILED = "verified", "pending", "failed"
_ACTORS = {
    "borrower": N_("You"),
    "owner": N_("The owner of your business"),
    "delegate": N_("Someone you allowed to act for you"),
    "unidentified": N_("Someone who could not be identified"),
    "other": N_("Someone else"),
}


@dataclass(frozen=True)
class LogMark:
    """The result of the server's check of one receipt: ``state`` (:data:`VERIFIED`,
    :data:`PENDING` or :data:`FAILED`) and, once verified, the entry's index and the size
    of the checkpoint it was proved against."""

    state: str
    index: int | None = None
    size: int | None = None


@dataclass(frozen=True)
class Access:
    """One access as the page shows it."""

    event_id: str
    at: datetime
    allowed: bool
    who: str
    who_is_word: bool
    what: str
    why: str
    consent_id: str | None
    mark: LogMark


def check_receipt(record: AccessRecord, log_vkey: str) -> LogMark:
    """Verify ``record``'s receipt against the log key ``log_vkey`` (every step of
    ``ledger.verify_receipt``, the event included); never raises: a failure is a mark."""
    if record.receipt is None:
        return LogMark(PENDING)
    try:
        verified = verify_receipt(record.receipt.model_dump(mode="json"), log_vkey)
    except (CommonsError, ValueError, TypeError):
        return LogMark(FAILED)
    if not verified.event_checked or verified.entry.id != record.event_id:
        return LogMark(FAILED)
    return LogMark(VERIFIED, verified.index, verified.checkpoint.size)


def _access(record: AccessRecord, log_vkey: str) -> Access:
    if record.actor_kind == "lender":
        who, is_word = record.lender_name, False
    else:
        who, is_word = _ACTORS.get(record.actor_kind, _ACTORS["other"]), True
    return Access(
        event_id=record.event_id,
        at=utc(datetime.fromisoformat(record.at)),
        allowed=record.outcome == "allowed",
        who=who,
        who_is_word=is_word,
        what=word(OPERATIONS, record.operation),
        why=word(REASONS, record.reason),
        consent_id=record.consent_id,
        mark=check_receipt(record, log_vkey),
    )


@router.get("/history")
def history_page(request: Request, me: Me, before: Before = None) -> HTMLResponse:
    """Who saw what, newest first, each access's receipt checked by the server."""
    rt: Runtime = request.app.state.runtime
    vkey = log_identity(rt).vkey
    with transaction(rt.read_sessions) as session:
        records = history.access_history(
            session, rt, borrower_principal(me), me.subject, limit=PAGE_SIZE + 1, before=before
        )
    more = records[PAGE_SIZE - 1].event_id if len(records) > PAGE_SIZE else None
    accesses = [_access(r, vkey) for r in records[:PAGE_SIZE]]
    return render(
        request,
        "borrower/history.html",
        {"accesses": accesses, "more": more, "first": before is None},
    )
