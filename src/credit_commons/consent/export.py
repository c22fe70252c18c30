"""The consent domain's part of a data-subject export: consents and the access history.

Consents are listed with their terms, status, approval (self, owner, delegate, did or
assisted), use count and the signed artefact the lender holds; the access history is
:func:`history.access_history` — every allowed and denied access that named the subject,
with the lender named and the log receipt — taken whole rather than its page of 200.
:func:`export_subject` is the consent domain's part, called by ``privacy/export.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.consent import history
from credit_commons.consent.artefacts import consent_answer
from credit_commons.consent.models import ConsentRow
from credit_commons.consent.schemas import AccessRecord, ExportedConsent
from credit_commons.identity import Principal
from credit_commons.runtime import Runtime

__all__ = ["ConsentExport", "export_access_history", "export_consents", "export_subject"]

# An export holds the whole history; this bound only keeps one request finite.
_HISTORY_LIMIT = 1_000_000


def export_consents(session: Session, token: str) -> list[ExportedConsent]:
    """Every consent the subject was asked for or gave, oldest first (the caller has
    authorised the request)."""
    rows = session.scalars(
        select(ConsentRow)
        .where(ConsentRow.principal_token == token)
        .order_by(ConsentRow.created_at, ConsentRow.id)
    )
    # The members a consent's view has, in the export's own order (the model's).
    return [consent_answer(ExportedConsent, row) for row in rows]


def export_access_history(
    session: Session, rt: Runtime, principal: Principal, token: str
) -> list[AccessRecord]:
    """Every access event about the subject, newest first, lenders named, with receipts.

    Raises :class:`~credit_commons.core.errors.NotFoundError` when ``principal`` may not
    manage the subject's consents.
    """
    return history.access_history(session, rt, principal, token, limit=_HISTORY_LIMIT)


@dataclass(frozen=True, slots=True)
class ConsentExport:
    """The consent domain's part of a data-subject export."""

    consents: list[ExportedConsent]
    access_history: list[AccessRecord]


def export_subject(
    session: Session, rt: Runtime, principal: Principal, token: str
) -> ConsentExport:
    """The subject's consents and whole access history (see :func:`export_consents` and
    :func:`export_access_history`, which raises for a caller who may not manage the
    subject's consents)."""
    return ConsentExport(
        consents=export_consents(session, token),
        access_history=export_access_history(session, rt, principal, token),
    )
