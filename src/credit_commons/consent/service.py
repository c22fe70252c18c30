"""What the platform's other parts ask of consent as a whole: the consent domain's part of a
data-subject erasure (:func:`forget_subject`, composed by ``privacy/erasure.py``) and the
periodic expiry of consents (:func:`expire_due`, run by ``jobs.py``).

The use cases themselves live in their own modules: ``requests`` (a lender's request, the
reads), ``decisions`` (the borrower's decisions), ``assisted`` (a field agent's help),
``check`` (the consent check and a consent's use), ``retrieval`` (consent-gated retrieval
and discovery), ``artefacts`` (the signed artefact and the ``consent`` key) and
``transitions`` (state changes, their events and webhooks).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from credit_commons.consent.model import ConsentStatus
from credit_commons.consent.models import ConsentRow, DiscoveryProfileRow
from credit_commons.consent.transitions import change
from credit_commons.runtime import Runtime

__all__ = ["ExpiryReport", "expire_due", "forget_subject"]


def forget_subject(session: Session, token: str) -> int:
    """The consent domain's part of an erasure: delete the subject's consents and discovery
    profile (their events stay in the log: pseudonyms and digests only), and — the subject
    being a field agent — forget them in the consents they helped with (their identity and
    sealed name; the consent still says an agent helped).  Returns how many consents were
    deleted."""
    deleted = session.execute(delete(ConsentRow).where(ConsentRow.principal_token == token))
    session.execute(
        update(ConsentRow)
        .where(ConsentRow.facilitator_token == token)
        .values(facilitator_token=None, facilitator_name_sealed=None)
    )
    session.execute(delete(DiscoveryProfileRow).where(DiscoveryProfileRow.principal_token == token))
    return int(getattr(deleted, "rowcount", 0) or 0)


@dataclass(frozen=True)
class ExpiryReport:
    """What :func:`expire_due` did."""

    expired: int


def expire_due(session: Session, rt: Runtime, *, limit: int = 1000) -> ExpiryReport:
    """Move consents (and requests) past their expiry to EXPIRED, with their events."""
    now = rt.clock.now()
    rows = session.scalars(
        select(ConsentRow)
        .where(
            ConsentRow.status.in_(
                [ConsentStatus.PENDING, ConsentStatus.ACTIVE, ConsentStatus.PAUSED]
            ),
            ConsentRow.expires_at <= now,
        )
        .limit(limit)
        .with_for_update()
    ).all()
    actor = rt.operator_actor("consent-expiry")
    for row in rows:
        change(session, rt, row, ConsentStatus.EXPIRED, actor)
    return ExpiryReport(len(rows))
