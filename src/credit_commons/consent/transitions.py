"""A consent's state changes: each writes its event and queues a signed webhook to the lender,
in the caller's transaction.

``consent.granted`` (with the signed artefact, ``consent/artefacts.py``),
``consent.rejected``, ``consent.paused``, ``consent.resumed``, ``consent.revoked`` and
``consent.expired`` carry the new status and by whose authority (``approval``) it changed.
"""

from __future__ import annotations

import hashlib

from sqlalchemy.orm import Session

from credit_commons.consent import webhooks
from credit_commons.consent.artefacts import sign_artefact
from credit_commons.consent.errors import ConsentStateInvalid
from credit_commons.consent.model import ConsentStatus
from credit_commons.consent.models import ConsentRow
from credit_commons.core.clock import utc
from credit_commons.events import EventDetails, Token, record_event
from credit_commons.runtime import Runtime

__all__ = [
    "TRANSITIONS",
    "ConsentChanged",
    "ConsentExpiredEvent",
    "ConsentGranted",
    "ConsentPausedEvent",
    "ConsentRejected",
    "ConsentResumed",
    "ConsentRevokedEvent",
    "change",
    "grant",
]


class ConsentChanged(EventDetails, event_type="consent.changed"):
    """Base of the consent state changes; each has its own event type."""

    status: Token
    approval: Token | None = None


class ConsentGranted(ConsentChanged, event_type="consent.granted"):
    """The borrower (or an agent they confirmed) granted the consent."""

    artefact_digest: Token


class ConsentRejected(ConsentChanged, event_type="consent.rejected"):
    """The borrower rejected the request."""


class ConsentPausedEvent(ConsentChanged, event_type="consent.paused"):
    """The borrower paused the consent."""


class ConsentResumed(ConsentChanged, event_type="consent.resumed"):
    """The borrower resumed a paused consent."""


class ConsentRevokedEvent(ConsentChanged, event_type="consent.revoked"):
    """The borrower revoked the consent."""


class ConsentExpiredEvent(ConsentChanged, event_type="consent.expired"):
    """The consent (or the request) ran past its expiry."""


_EVENTS: dict[str, type[ConsentChanged]] = {
    ConsentStatus.REJECTED: ConsentRejected,
    ConsentStatus.PAUSED: ConsentPausedEvent,
    ConsentStatus.REVOKED: ConsentRevokedEvent,
    ConsentStatus.EXPIRED: ConsentExpiredEvent,
}

TRANSITIONS: dict[str, tuple[frozenset[str], ConsentStatus]] = {
    "reject": (frozenset({ConsentStatus.PENDING}), ConsentStatus.REJECTED),
    "pause": (frozenset({ConsentStatus.ACTIVE}), ConsentStatus.PAUSED),
    "resume": (frozenset({ConsentStatus.PAUSED}), ConsentStatus.ACTIVE),
    "revoke": (frozenset({ConsentStatus.ACTIVE, ConsentStatus.PAUSED}), ConsentStatus.REVOKED),
}
"""A borrower's action -> (the states it applies to, the state it leads to)."""


def change(
    session: Session,
    rt: Runtime,
    row: ConsentRow,
    target: ConsentStatus,
    actor: str,
    *,
    approval: str | None = None,
) -> str:
    """Move ``row`` to ``target`` with its event and webhook; returns the event id.
    ``approval`` says by whose authority (a ``Decider``'s); ``None`` for the expiry job."""
    now = rt.clock.now()
    row.status = target
    row.updated_at = now
    details_type = _EVENTS.get(target, ConsentResumed)
    event = record_event(
        session,
        details_type(status=target.value, approval=approval),
        actor=actor,
        at=now,
        subject=row.principal,
        object=rt.objects.digest("consent", row.id),
    )
    webhooks.enqueue(session, rt, row, event.id)
    return event.id


def grant(
    session: Session,
    rt: Runtime,
    row: ConsentRow,
    *,
    approval: str,
    actor: str,
    facilitator: str | None,
) -> str:
    """Grant a pending consent: ACTIVE, its artefact signed, ``consent.granted`` and the
    webhook; returns the event id.  An approval that is not ``assisted`` forgets the field
    agent who may have prepared the request (``consent/assisted.py``): they did not take
    part in it.  Raises ``ConsentStateInvalid`` past the request's expiry."""
    now = rt.clock.now()
    if now >= utc(row.expires_at):
        raise ConsentStateInvalid("the consent request has expired")
    row.status = ConsentStatus.ACTIVE
    row.approval, row.facilitator = approval, facilitator
    if approval != "assisted":
        row.facilitator_token = row.facilitator_name_sealed = None
    row.otp_hash = row.otp_expires_at = None
    row.updated_at = now
    row.artefact = sign_artefact(session, rt, row, now)
    event = record_event(
        session,
        ConsentGranted(
            status=ConsentStatus.ACTIVE.value,
            approval=approval,
            artefact_digest=hashlib.sha256(row.artefact.encode()).hexdigest(),
        ),
        actor=actor,
        at=now,
        subject=row.principal,
        object=rt.objects.digest("consent", row.id),
    )
    webhooks.enqueue(session, rt, row, event.id)
    return event.id
