"""Access events: every attempt to reach a borrower's data, allowed or denied, is logged.

``access.allowed`` and ``access.denied`` carry only machine tokens: what was asked for (the
operation), and for a denial the reason code (``consent.revoked``, ``auth.token_invalid``…).
The actor is the lender's pseudonym (or, for a caller that could not even be identified, the
pseudonym of ``anonymous``), the subject the borrower's pseudonym when known, the object the
digest of the consent or credential reference.

A denial must outlive the request that was denied, whose transaction rolls back: so
:func:`record_denial` writes in a unit of work of its own.  The answer to the caller never
says more than "not permitted"; the reason is in the log for the borrower and auditors.

Only denials that name an existing consent or borrower (a subject) become events.  The rest
— no, forged or expired token, an unknown consent, an unknown client — are about nobody's
data, and a stranger could send them without end: :func:`record_refusal` counts them
instead (``consent.denial_counts`` and the ``commons_access_denials_unattributed_total``
Prometheus counter), so they never grow the log.
"""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.orm import Session

from credit_commons.consent import denial_counts
from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError, ExitCode, NotFoundError
from credit_commons.events import EventDetails, RecordedEvent, Token, record_event
from credit_commons.runtime import Runtime

__all__ = [
    "AccessAllowed",
    "AccessDenied",
    "Denied",
    "Lender",
    "NotAuthenticated",
    "Refused",
    "RefusedDecision",
    "anonymous_actor",
    "denial_counter",
    "lender_actor",
    "record_allowed",
    "record_denial",
    "record_refusal",
]


class AccessAllowed(EventDetails, event_type="access.allowed"):
    """A lender was given data under a consent."""

    operation: Token


class AccessDenied(EventDetails, event_type="access.denied"):
    """An attempt to reach data was refused; ``reason`` is the refusal's error code."""

    operation: Token
    reason: Token


class Lender(Protocol):
    """An authenticated lender client (``gateway``'s ``LenderPrincipal``)."""

    @property
    def client_id(self) -> str: ...

    @property
    def purposes(self) -> frozenset[str]: ...


def lender_actor(rt: Runtime, client_id: str) -> str:
    """The pseudonym that stands for a lender client as an event actor."""
    return rt.pseudonymizer.pseudonym("lender", client_id)


def anonymous_actor(rt: Runtime) -> str:
    """The actor of a denial whose caller could not be identified (a forged token...)."""
    return rt.pseudonymizer.pseudonym("lender", "anonymous")


def record_allowed(
    session: Session,
    rt: Runtime,
    *,
    actor: str,
    operation: str,
    subject: str | None = None,
    object: str | None = None,
) -> RecordedEvent:
    """Record ``access.allowed`` in the caller's transaction (it commits with the access)."""
    return record_event(
        session,
        AccessAllowed(operation=operation),
        actor=actor,
        at=rt.clock.now(),
        subject=subject,
        object=object,
    )


def record_denial(
    rt: Runtime,
    *,
    actor: str,
    operation: str,
    reason: str,
    subject: str | None = None,
    object: str | None = None,
) -> RecordedEvent:
    """Record ``access.denied`` in its own committed unit of work and return it."""
    with transaction(rt.sessions) as session:
        return record_event(
            session,
            AccessDenied(operation=operation, reason=reason),
            actor=actor,
            at=rt.clock.now(),
            subject=subject,
            object=object,
        )


def record_refusal(
    rt: Runtime,
    *,
    actor: str,
    operation: str,
    reason: str,
    subject: str | None = None,
    object: str | None = None,
    counter: Counter | None = None,
) -> RecordedEvent | None:
    """Record one refused attempt where it belongs, in a unit of work of its own.

    With a ``subject`` (the attempt named an existing consent or borrower) it is an
    ``access.denied`` event, returned.  Without one it is counted — the hour's (operation,
    reason, actor) count, and ``counter`` (the app's Prometheus counter, by operation and
    reason) when given — and ``None`` is returned: nothing reaches the log.  Raises what
    the database raises.
    """
    if subject is None:
        denial_counts.count_denial(rt, operation=operation, reason=reason, actor=actor)
        if counter is not None:
            counter.labels(operation, reason).inc()
        return None
    return record_denial(
        rt, actor=actor, operation=operation, reason=reason, subject=subject, object=object
    )


def denial_counter(registry: CollectorRegistry) -> Counter:
    """The Prometheus counter of refusals that named no consent or borrower (by operation
    and reason), created in ``registry``."""
    return Counter(
        "commons_access_denials_unattributed",
        "Refused requests that named no existing consent or borrower (counted, not logged).",
        ["operation", "reason"],
        registry=registry,
    )


class Refused(CommonsError):
    """An attempt on a borrower's data that was refused, with what to record about it
    (``access.denied``: the operation, the reason, who tried, whose data).  The record
    must outlive the request, whose transaction rolls back: :meth:`record` writes it in a
    unit of work of its own, and the gateway's HTTP handler (``gateway/denials.py``) calls
    it once the request's unit of work is over.

    Subclasses choose the answer the caller gets (:class:`Denied`: 403 "not permitted";
    :class:`RefusedDecision`: the 404 an unknown consent gets), which never carries the
    reason.
    """

    def __init__(
        self,
        detail: str | None = None,
        *,
        operation: str,
        reason: str,
        actor: str,
        subject: str | None = None,
        object: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.operation, self.reason, self.actor = operation, reason, actor
        self.subject, self.object = subject, object

    def record(self, rt: Runtime, counter: Counter | None = None) -> RecordedEvent | None:
        """Record the attempt (its own unit of work) with :func:`record_refusal`: the
        ``access.denied`` event when it names a subject, a count otherwise."""
        return record_refusal(
            rt,
            actor=self.actor,
            operation=self.operation,
            reason=self.reason,
            subject=self.subject,
            object=self.object,
            counter=counter,
        )


class Denied(Refused):
    """A refused data access.  The caller sees only "not permitted"; the gateway's handler
    (``gateway/denials.py``) records ``access.denied`` with the real ``reason``
    once the request's own transaction has rolled back.

    Raise it as ``Denied(operation=..., reason=..., actor=..., subject=..., object=...)``.
    """

    code = "access.denied"
    title = "Not permitted"
    status = 403
    exit_code = ExitCode.FORBIDDEN

    def __init__(
        self,
        *,
        operation: str,
        reason: str,
        actor: str,
        subject: str | None = None,
        object: str | None = None,
    ) -> None:
        super().__init__(
            "not permitted",
            operation=operation,
            reason=reason,
            actor=actor,
            subject=subject,
            object=object,
        )


class NotAuthenticated(Denied):
    """A refused access whose credentials (access token, client assertion) were not valid:
    401 with ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750 §3)."""

    code = "auth.invalid_token"
    title = "Not authenticated"
    status = 401


class RefusedDecision(Refused, NotFoundError):
    """A decision on a borrower's consent by someone who may not take it (an administrator,
    another identity, a delegate without ``manage:consents``, a wrong DID signature or
    one-time code...).  The caller gets exactly the 404 of an unknown consent (or
    borrower) — ``detail`` is that answer's — and the attempt is recorded for the
    borrower."""
