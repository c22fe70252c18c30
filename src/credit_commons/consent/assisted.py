"""Assisted consent (seed 000): a field agent prepares a pending consent for a borrower.

An agent holding a live ``assist:consent`` delegation from the borrower asks for a one-time
code, which goes to the borrower (``consent/notify.py``); the borrower reads it to the agent,
who submits it, and the consent is granted with ``approval: assisted`` and the agent
recorded as facilitator.  At most three codes an hour per consent, five tries per code;
every refused try is recorded in the borrower's access history.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from credit_commons.consent import notify
from credit_commons.consent.access import AccessDenied, RefusedDecision
from credit_commons.consent.artefacts import consent_answer
from credit_commons.consent.decisions import operation_token
from credit_commons.consent.errors import ConsentStateInvalid, OneTimeCodeRefused
from credit_commons.consent.model import ConsentStatus
from credit_commons.consent.models import ConsentRow
from credit_commons.consent.schemas import AssistAnswer, AssistGranted, AssistStarted
from credit_commons.consent.transitions import grant
from credit_commons.core.clock import utc
from credit_commons.core.errors import NotFoundError
from credit_commons.events import EventDetails, EventRow, record_event
from credit_commons.identity import Permission, Principal, actor_of, has_delegation, subject_of
from credit_commons.runtime import Runtime

__all__ = ["ConsentAssisted", "assist", "confirm_assisted"]

_OTP_TTL = timedelta(minutes=10)
_OTP_ATTEMPTS = 5
_CODES_PER_HOUR = 3


class ConsentAssisted(EventDetails, event_type="consent.assisted"):
    """A field agent prepared the consent; a one-time code went to the borrower."""

    delivered: bool


def assist(session: Session, rt: Runtime, agent: Principal, consent_id: str) -> AssistStarted:
    """A field agent with a live ``assist:consent`` delegation from the borrower prepares a
    pending consent: a one-time code goes to the borrower (``consent.notify``), who reads
    it to the agent.

    Raises :class:`NotFoundError` (unknown, or not pending), ``RefusedDecision`` (the same
    404, recorded for the borrower) without the delegation, ``ConsentStateInvalid`` past
    three codes an hour.
    """
    row = session.get(ConsentRow, consent_id)
    if row is None:
        raise NotFoundError("no such consent")
    _require_assist(session, rt, agent, row, operation_token("assist"))
    if row.status != ConsentStatus.PENDING:
        raise NotFoundError("no such consent")
    # At most three codes per consent per hour: with five tries per code, guessing stays
    # at fifteen tries an hour out of a million, and every code reaches the borrower.
    since = rt.clock.now() - timedelta(hours=1)
    sent = session.scalar(
        select(func.count())
        .select_from(EventRow)
        .where(
            EventRow.type == ConsentAssisted.event_type,
            EventRow.object.in_(rt.objects.candidates("consent", row.id)),
            EventRow.at >= since,
        )
    )
    if (sent or 0) >= _CODES_PER_HOUR:
        raise ConsentStateInvalid("three codes were sent in the last hour; try again later")
    code = f"{secrets.randbelow(1_000_000):06d}"
    row.otp_hash = _otp_hash(rt, row.id, code)
    row.otp_expires_at = rt.clock.now() + _OTP_TTL
    row.otp_attempts = 0
    row.facilitator = actor_of(rt, agent)
    delivered = notify.send_code(rt, row.principal_token, row.id, code)
    record_event(
        session,
        ConsentAssisted(delivered=delivered),
        actor=actor_of(rt, agent),
        at=rt.clock.now(),
        subject=row.principal,
        object=rt.objects.digest("consent", row.id),
    )
    return AssistStarted(
        consent_id=row.id, code_sent=delivered, expires_in=int(_OTP_TTL.total_seconds())
    )


def confirm_assisted(
    session: Session, rt: Runtime, agent: Principal, consent_id: str, code: str
) -> AssistGranted | AssistAnswer:
    """The agent submits the borrower's one-time code: the consent is granted
    (``approval: assisted``), the agent recorded as facilitator.

    A wrong code is answered ``accepted: false`` and recorded in the borrower's access
    history (``consent.otp_invalid``, in this transaction); five wrong codes void the
    code.  Raises :class:`NotFoundError` (unknown, or not pending), ``RefusedDecision``
    (the same 404, recorded) without the agent's delegation, and ``OneTimeCodeRefused``
    (409, recorded) when no code is live or the tries are used up.
    """
    operation = operation_token("assist_confirm")
    row = session.get(ConsentRow, consent_id)
    if row is None:
        raise NotFoundError("no such consent")
    _require_assist(session, rt, agent, row, operation)
    if row.status != ConsentStatus.PENDING:
        raise NotFoundError("no such consent")
    actor, target = actor_of(rt, agent), rt.objects.digest("consent", row.id)

    def refused(detail: str, reason: str) -> OneTimeCodeRefused:
        return OneTimeCodeRefused(
            detail,
            operation=operation,
            reason=reason,
            actor=actor,
            subject=row.principal,
            object=target,
        )

    expires = row.otp_expires_at
    if row.otp_hash is None or expires is None or utc(expires) <= rt.clock.now():
        raise refused("no live one-time code; ask for a new one", "consent.otp_expired")
    if row.otp_attempts >= _OTP_ATTEMPTS:
        raise refused("too many wrong codes; ask for a new one", "consent.otp_exhausted")
    if not hmac.compare_digest(row.otp_hash, _otp_hash(rt, row.id, code)):
        row.otp_attempts += 1
        # The answer commits (the count of tries must), and the attempt with it.
        record_event(
            session,
            AccessDenied(operation=operation, reason="consent.otp_invalid"),
            actor=actor,
            at=rt.clock.now(),
            subject=row.principal,
            object=target,
        )
        return AssistAnswer(consent_id=row.id, status=row.status, accepted=False)
    event_id = grant(
        session,
        rt,
        row,
        approval="assisted",
        actor=subject_of(rt, row.principal_token),
        facilitator=actor,
    )
    return consent_answer(AssistGranted, row, accepted=True, event_id=event_id)


def _require_assist(
    session: Session, rt: Runtime, agent: Principal, row: ConsentRow, operation: str
) -> None:
    # Only a live assist:consent delegation from the borrower lets an agent in; anyone
    # else's attempt is refused like an unknown consent, and recorded for the borrower.
    if agent.is_admin or not has_delegation(
        session, row.principal_token, agent.subject, Permission.ASSIST_CONSENT, rt.clock.now()
    ):
        raise RefusedDecision(
            "no such consent",
            operation=operation,
            reason="consent.not_authorised",
            actor=actor_of(rt, agent),
            subject=row.principal,
            object=rt.objects.digest("consent", row.id),
        )


def _otp_hash(rt: Runtime, consent_id: str, code: str) -> str:
    return rt.pseudonymizer.pseudonym("consent-otp", f"{consent_id}:{code}")
