"""Assisted consent (seed 000): a field agent prepares a pending consent for a borrower.

An agent holding a live ``assist:consent`` delegation from the borrower asks for a one-time
code, which goes to the borrower (``consent/notify.py``); the borrower reads it to the agent,
who submits it (:func:`confirm_assisted`) — or the borrower types it on their own phone
(:func:`confirm_assisted_by_borrower`) — and the consent is granted with ``approval:
assisted`` and the agent recorded as facilitator.  At most three codes an hour per consent,
five tries per code; every refused try is recorded in the borrower's access history.

The facilitator is recorded twice: by pseudonym (``facilitator``, what the artefact and the
log carry) and, for the borrower, by name — the agent's identity and the name they
registered, sealed under the agent's own data key (erasing the agent makes it unreadable).
:func:`assisting_agent` and :func:`assisting_agents` give the borrower that name, so every
assisted act can show who helped.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from credit_commons.consent import notify
from credit_commons.consent.access import AccessDenied, RefusedDecision
from credit_commons.consent.artefacts import consent_answer, public_view
from credit_commons.consent.decisions import decider, operation_token
from credit_commons.consent.errors import ConsentStateInvalid, OneTimeCodeRefused
from credit_commons.consent.model import ConsentStatus, was_assisted
from credit_commons.consent.models import ConsentRow
from credit_commons.consent.schemas import (
    AssistAnswer,
    AssistGranted,
    AssistingAgent,
    AssistStarted,
    ConsentView,
)
from credit_commons.consent.transitions import grant
from credit_commons.core.clock import utc
from credit_commons.core.errors import NotFoundError
from credit_commons.events import EventDetails, EventRow, record_event
from credit_commons.identity import (
    Permission,
    Principal,
    actor_of,
    authorise,
    has_delegation,
    subject_of,
)
from credit_commons.identity import service as identity_service
from credit_commons.runtime import Runtime
from credit_commons.vault import DecryptionFailed

__all__ = [
    "ConsentAssisted",
    "assist",
    "assisting_agent",
    "assisting_agents",
    "confirm_assisted",
    "confirm_assisted_by_borrower",
    "consent_for_agent",
    "pending_for_agent",
]

_OTP_TTL = timedelta(minutes=10)
_OTP_ATTEMPTS = 5
_CODES_PER_HOUR = 3
_NAME_PURPOSE = "consent-facilitator"


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
    _record_agent(session, rt, row, agent)
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
    (``approval: assisted``), the agent recorded as facilitator (by pseudonym, and by name
    for the borrower).

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
    actor = actor_of(rt, agent)
    if not _check_code(session, rt, row, code, actor=actor, operation=operation):
        return AssistAnswer(consent_id=row.id, status=row.status, accepted=False)
    _record_agent(session, rt, row, agent)
    return _grant(session, rt, row, facilitator=actor)


def confirm_assisted_by_borrower(
    session: Session, rt: Runtime, borrower: Principal, consent_id: str, code: str
) -> AssistGranted | AssistAnswer:
    """The borrower types, on their own phone, the one-time code an agent had sent them:
    the consent is granted exactly as :func:`confirm_assisted` grants it (``approval:
    assisted``, the agent who sent the code as facilitator).  ``borrower`` is whoever may
    decide for the borrower (``consent.decisions.decider``: the borrower, the owner of an
    enterprise, a delegate holding ``manage:consents``).

    The same answers and records as :func:`confirm_assisted`: ``accepted: false`` for a
    wrong code, ``OneTimeCodeRefused`` when no code is live (none was sent) or the tries
    are used up, ``NotFoundError`` / ``RefusedDecision`` (404) for an unknown consent, one
    that is not pending, or a caller who may not decide.
    """
    operation = operation_token("assist_confirm")
    row = session.get(ConsentRow, consent_id)
    if row is None:
        raise NotFoundError("no such consent")
    who = decider(
        session,
        rt,
        borrower,
        row.principal_token,
        operation,
        object=rt.objects.digest("consent", row.id),
    )
    if row.status != ConsentStatus.PENDING:
        raise NotFoundError("no such consent")
    if not _check_code(session, rt, row, code, actor=who.actor, operation=operation):
        return AssistAnswer(consent_id=row.id, status=row.status, accepted=False)
    # A live code was sent by an agent, who is the facilitator (assist set both).
    return _grant(session, rt, row, facilitator=row.facilitator or who.actor)


def _check_code(
    session: Session, rt: Runtime, row: ConsentRow, code: str, *, actor: str, operation: str
) -> bool:
    # Whether ``code`` is the live one (the caller's grant then spends it); a wrong code
    # counts a try and records it; no live code, or no tries left, raise
    # OneTimeCodeRefused (recorded).
    target = rt.objects.digest("consent", row.id)

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
        return False
    return True


def _grant(session: Session, rt: Runtime, row: ConsentRow, *, facilitator: str) -> AssistGranted:
    event_id = grant(
        session,
        rt,
        row,
        approval="assisted",
        actor=subject_of(rt, row.principal_token),
        facilitator=facilitator,
    )
    return consent_answer(AssistGranted, row, accepted=True, event_id=event_id)


def _record_agent(session: Session, rt: Runtime, row: ConsentRow, agent: Principal) -> None:
    # The agent by name for the borrower: their identity, and the name they registered
    # sealed under their own data key (so their erasure shreds it).  Kept when the same
    # agent acts again.
    if row.facilitator_token == agent.subject and row.facilitator_name_sealed is not None:
        return
    name = identity_service.display_name(session, rt, agent.subject)
    row.facilitator_token = agent.subject
    row.facilitator_name_sealed = (
        None
        if name is None
        else rt.vault.seal(
            session,
            name.encode(),
            subject=agent.subject,
            purpose=_NAME_PURPOSE,
            record=_name_record(row.id),
        )
    )


def _name_record(consent_id: str) -> str:
    return f"consent:{consent_id}:facilitator"


def _agent_of(session: Session, rt: Runtime, row: ConsentRow) -> AssistingAgent | None:
    # Whether an agent helped is the consent's own record (``was_assisted``); their name is
    # shown when it was recorded and is still readable (not for consents assisted before
    # names were recorded, nor once the agent was erased).
    if not was_assisted(row.approval, row.facilitator):
        return None
    name = None
    if row.facilitator_token is not None and row.facilitator_name_sealed is not None:
        try:
            name = rt.vault.open(
                session,
                row.facilitator_name_sealed,
                subject=row.facilitator_token,
                purpose=_NAME_PURPOSE,
                record=_name_record(row.id),
            ).decode()
        except DecryptionFailed:
            name = None  # the agent's keys were shredded
    return AssistingAgent(consent_id=row.id, name=name, granted=row.approval == "assisted")


def assisting_agent(
    session: Session, rt: Runtime, principal: Principal, consent_id: str
) -> AssistingAgent | None:
    """The field agent who helped with one of the borrower's consents (preparing it, or
    confirming it with the borrower's code), by name; ``None`` when no agent did.
    ``principal`` is whoever may read the borrower's consents (as
    ``consent.requests.get_for_borrower``).  Raises :class:`NotFoundError` otherwise, and
    for an unknown consent."""
    row = session.get(ConsentRow, consent_id)
    if row is None:
        raise NotFoundError("no such consent")
    try:
        authorise(
            session, principal, row.principal_token, Permission.MANAGE_CONSENTS, rt.clock.now()
        )
    except NotFoundError:
        raise NotFoundError("no such consent") from None
    return _agent_of(session, rt, row)


def assisting_agents(
    session: Session, rt: Runtime, principal: Principal, token: str, consent_ids: list[str]
) -> dict[str, AssistingAgent]:
    """:func:`assisting_agent` for a page of borrower ``token``'s consents: the consents of
    ``consent_ids`` (at most 200) an agent helped with, by id — one indexed read.  Ids that
    are not the borrower's, or that no agent helped with, are left out.  Raises
    :class:`NotFoundError` when ``principal`` may not read the borrower's consents."""
    authorise(session, principal, token, Permission.MANAGE_CONSENTS, rt.clock.now())
    if not consent_ids:
        return {}
    rows = session.scalars(
        select(ConsentRow).where(
            ConsentRow.id.in_(consent_ids[:200]), ConsentRow.principal_token == token
        )
    )
    found = (_agent_of(session, rt, row) for row in rows)
    return {agent.consent_id: agent for agent in found if agent is not None}


def pending_for_agent(
    session: Session,
    rt: Runtime,
    agent: Principal,
    token: str,
    *,
    before: str | None = None,
    limit: int = 20,
) -> list[ConsentView]:
    """Borrower ``token``'s consent requests a field agent may prepare (:func:`assist`):
    the pending ones, not past their expiry, newest first — ``limit`` of them, after the
    consent id ``before`` (the last of the previous page); one indexed read.

    Only an agent holding a live ``assist:consent`` delegation from the borrower may see
    them.  Raises :class:`NotFoundError` for an unknown borrower, and ``RefusedDecision``
    (the same 404, recorded for the borrower: operation ``consent.assist_find``) for
    anyone without the delegation.
    """
    if not identity_service.identity_exists(session, token):
        raise NotFoundError("no such borrower")
    now = rt.clock.now()
    if agent.is_admin or not has_delegation(
        session, token, agent.subject, Permission.ASSIST_CONSENT, now
    ):
        raise RefusedDecision(
            "no such borrower",
            operation=operation_token("assist_find"),
            reason="consent.not_authorised",
            actor=actor_of(rt, agent),
            subject=subject_of(rt, token),
        )
    # The expiry is compared through coalesce(x, x), the same value, so that no index on it
    # is a candidate: without statistics SQLite otherwise read (status, expires_at) -- every
    # pending consent of every borrower, then sorted (1.7 s at 1,000,000 consents) -- where
    # (principal_token, status, id) reads this borrower's newest rows in order.
    query = select(ConsentRow).where(
        ConsentRow.principal_token == token,
        ConsentRow.status == ConsentStatus.PENDING,
        func.coalesce(ConsentRow.expires_at, ConsentRow.expires_at) > now,
    )
    if before is not None:
        query = query.where(ConsentRow.id < before)
    rows = session.scalars(query.order_by(ConsentRow.id.desc()).limit(max(1, min(limit, 100))))
    return [public_view(row) for row in rows]


def consent_for_agent(
    session: Session, rt: Runtime, agent: Principal, consent_id: str
) -> ConsentView:
    """One consent as the field agent sees it while helping: a pending request of a
    borrower who gave them a live ``assist:consent`` delegation, or one this agent
    confirmed (``approval: assisted``, the agent its facilitator) while it is active — once
    paused, revoked or expired it is the borrower's business alone.  Raises
    :class:`NotFoundError` for an unknown consent or any other state, and
    ``RefusedDecision`` (the same 404, recorded) without the delegation."""
    row = session.get(ConsentRow, consent_id)
    if row is None:
        raise NotFoundError("no such consent")
    _require_assist(session, rt, agent, row, operation_token("assist_read"))
    confirmed_by_agent = (
        row.status == ConsentStatus.ACTIVE
        and row.approval == "assisted"
        and row.facilitator_token == agent.subject
    )
    if row.status != ConsentStatus.PENDING and not confirmed_by_agent:
        raise NotFoundError("no such consent")
    return public_view(row)


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
