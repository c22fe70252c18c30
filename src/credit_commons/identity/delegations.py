"""Delegations: one identity acting for another, within permissions, until expiry.

A delegation is offered by the delegator (which counts as their acceptance) and takes
effect only when the delegatee accepts too; either party — or an administrator — can
revoke it at any time.  ``field_agent_assist`` needs a delegatee holding the
``field_agent`` role.  Every change records an event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.errors import ConflictError, NotFoundError
from credit_commons.core.ids import new_id
from credit_commons.events import EventDetails, Token, record_event
from credit_commons.identity.auth import Principal, actor_of, delegation_effective, subject_of
from credit_commons.identity.models import DelegationRow, IdentityRow
from credit_commons.identity.schemas import (
    DelegationCreate,
    DelegationType,
    DelegationView,
    ExportedDelegation,
    Permission,
    Role,
)
from credit_commons.runtime import Runtime

__all__ = [
    "AssistDelegation",
    "DelegationChanged",
    "accept_delegation",
    "assist_delegation",
    "assist_delegation_id",
    "assist_delegations_page",
    "create_delegation",
    "delegatees_of",
    "export_delegations",
    "list_delegations",
    "prune_delegations",
    "revoke_delegation",
]


class DelegationChanged(EventDetails, event_type="delegation.changed"):
    """A delegation was offered, accepted or revoked."""

    change: Token
    type: DelegationType
    permissions: tuple[Permission, ...]


def delegatees_of(session: Session, delegator: str) -> set[str]:
    """Every identity ``delegator`` ever offered a delegation to (live or not), for naming
    who acted in the delegator's history.  Raises nothing."""
    return set(
        session.scalars(
            select(DelegationRow.delegatee_token).where(DelegationRow.delegator_token == delegator)
        )
    )


def _view(row: DelegationRow, now: datetime) -> DelegationView:
    return DelegationView(
        id=row.id,
        type=row.type,
        delegator_token=row.delegator_token,
        delegatee_token=row.delegatee_token,
        permissions=json.loads(row.permissions),
        expires_at=utc(row.expires_at).isoformat(),
        accepted_by_delegator=row.delegator_accepted_at is not None,
        accepted_by_delegatee=row.delegatee_accepted_at is not None,
        revoked=row.revoked_at is not None,
        effective=delegation_effective(row, now),
    )


def _record(
    session: Session, rt: Runtime, principal: Principal, row: DelegationRow, change: str
) -> None:
    record_event(
        session,
        DelegationChanged(
            change=change,
            type=DelegationType(row.type),
            permissions=tuple(Permission(p) for p in json.loads(row.permissions)),
        ),
        actor=actor_of(rt, principal),
        at=rt.clock.now(),
        subject=subject_of(rt, row.delegator_token),
        object=rt.objects.digest("delegation", row.id),
    )


def create_delegation(
    session: Session, rt: Runtime, principal: Principal, delegator: str, request: DelegationCreate
) -> DelegationView:
    """Offer a delegation from ``delegator`` (the caller, or an admin acting for them).

    Raises :class:`NotFoundError` when the caller may not act for ``delegator`` or the
    delegatee does not exist, :class:`ConflictError` for a self-delegation or a
    ``field_agent_assist`` to someone without the field-agent role.
    """
    if not (principal.is_admin or principal.subject == delegator):
        raise NotFoundError("no such identity")
    if session.get(IdentityRow, delegator) is None:
        raise NotFoundError("no such identity")
    delegatee = session.get(IdentityRow, request.delegatee_token)
    if delegatee is None:
        raise NotFoundError("no such delegatee identity")
    if request.delegatee_token == delegator:
        raise ConflictError("an identity cannot delegate to itself")
    if (
        request.type is DelegationType.FIELD_AGENT_ASSIST
        and Role.FIELD_AGENT.value not in json.loads(delegatee.roles)
    ):
        raise ConflictError("field_agent_assist needs a delegatee with the field_agent role")
    now = rt.clock.now()
    row = DelegationRow(
        id=new_id("dlg"),
        type=request.type.value,
        delegator_token=delegator,
        delegatee_token=request.delegatee_token,
        permissions=json.dumps(sorted({p.value for p in request.permissions})),
        expires_at=now + timedelta(days=request.expires_in_days),
        delegator_accepted_at=now,
        created_at=now,
    )
    session.add(row)
    session.flush()
    _record(session, rt, principal, row, "offered")
    return _view(row, now)


def _party_row(session: Session, principal: Principal, delegation_id: str) -> DelegationRow:
    row = session.get(DelegationRow, delegation_id)
    if row is None or not (
        principal.is_admin or principal.subject in (row.delegator_token, row.delegatee_token)
    ):
        raise NotFoundError("no such delegation")
    return row


def accept_delegation(
    session: Session, rt: Runtime, principal: Principal, delegation_id: str
) -> DelegationView:
    """The delegatee accepts; raises ``NotFoundError`` for anyone else, ``ConflictError``
    for a revoked or expired delegation."""
    row = _party_row(session, principal, delegation_id)
    if principal.subject != row.delegatee_token:
        raise NotFoundError("no such delegation")
    now = rt.clock.now()
    if row.revoked_at is not None or utc(row.expires_at) <= now:
        raise ConflictError("the delegation was revoked or has expired")
    if row.delegatee_accepted_at is None:
        row.delegatee_accepted_at = now
        _record(session, rt, principal, row, "accepted")
    return _view(row, now)


def revoke_delegation(
    session: Session, rt: Runtime, principal: Principal, delegation_id: str
) -> DelegationView:
    """Either party (or an admin) revokes; idempotent."""
    row = _party_row(session, principal, delegation_id)
    now = rt.clock.now()
    if row.revoked_at is None:
        row.revoked_at = now
        _record(session, rt, principal, row, "revoked")
    return _view(row, now)


def list_delegations(
    session: Session, rt: Runtime, principal: Principal, token: str
) -> list[DelegationView]:
    """Delegations where ``token`` is a party (the caller must be that party or an admin)."""
    if not (principal.is_admin or principal.subject == token):
        raise NotFoundError("no such identity")
    rows = session.scalars(
        select(DelegationRow)
        .where(or_(DelegationRow.delegator_token == token, DelegationRow.delegatee_token == token))
        .order_by(DelegationRow.id)
    ).all()
    now = rt.clock.now()
    return [_view(r, now) for r in rows]


def _assists(row: DelegationRow, now: datetime) -> bool:
    return delegation_effective(row, now) and Permission.ASSIST_CONSENT.value in json.loads(
        row.permissions
    )


def assist_delegation(
    session: Session, agent: str, delegation_id: str, now: datetime
) -> str | None:
    """The borrower (delegator) of ``delegation_id`` when it is an ``assist:consent``
    delegation to ``agent`` in effect at ``now``; None otherwise (no such delegation, another
    agent's, not in effect).  Lets the console name a borrower by the delegation's id instead
    of their identity token.  Raises nothing."""
    row = session.get(DelegationRow, delegation_id)
    if row is None or row.delegatee_token != agent or not _assists(row, now):
        return None
    return row.delegator_token


def assist_delegation_id(session: Session, delegator: str, agent: str, now: datetime) -> str | None:
    """The id of an ``assist:consent`` delegation from ``delegator`` to ``agent`` in effect
    at ``now`` (the first by id), or None.  Raises nothing."""
    rows = session.scalars(
        select(DelegationRow)
        .where(DelegationRow.delegatee_token == agent, DelegationRow.delegator_token == delegator)
        .order_by(DelegationRow.id)
    )
    return next((r.id for r in rows if _assists(r, now)), None)


@dataclass(frozen=True)
class AssistDelegation:
    """A live ``assist:consent`` delegation to an agent: its id and the borrower's token."""

    id: str
    delegator_token: str


def assist_delegations_page(
    session: Session,
    agent: str,
    now: datetime,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int,
) -> list[AssistDelegation]:
    """Up to ``limit`` of the ``assist:consent`` delegations to ``agent`` in effect at
    ``now``, in id order: those after the id ``after``, or the last ones before the id
    ``before`` (the page before), or the first.  One keyset read on ``(delegatee_token, id)``
    that stops at its limit.  Raises nothing."""
    # delegation_effective and the permission, as SQL: the page is the rows the limit reads.
    query = select(DelegationRow.id, DelegationRow.delegator_token).where(
        DelegationRow.delegatee_token == agent,
        DelegationRow.revoked_at.is_(None),
        DelegationRow.delegator_accepted_at.is_not(None),
        DelegationRow.delegatee_accepted_at.is_not(None),
        DelegationRow.expires_at > now,
        DelegationRow.permissions.contains(json.dumps(Permission.ASSIST_CONSENT.value)),
    )
    if before is not None:
        query = query.where(DelegationRow.id < before).order_by(DelegationRow.id.desc())
    else:
        if after is not None:
            query = query.where(DelegationRow.id > after)
        query = query.order_by(DelegationRow.id)
    rows = [AssistDelegation(i, t) for i, t in session.execute(query.limit(limit))]
    return rows[::-1] if before is not None else rows


def prune_delegations(session: Session, before: datetime) -> int:
    """Delete the delegations revoked or expired before ``before`` (retention); returns how
    many went."""
    result = session.execute(
        delete(DelegationRow).where(
            or_(DelegationRow.revoked_at < before, DelegationRow.expires_at < before)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _export_view(row: DelegationRow, token: str) -> ExportedDelegation:
    def when(value: datetime | None) -> str | None:
        return utc(value).isoformat() if value is not None else None

    return ExportedDelegation(
        id=row.id,
        type=row.type,
        role="delegator" if row.delegator_token == token else "delegatee",
        delegator_token=row.delegator_token,
        delegatee_token=row.delegatee_token,
        permissions=json.loads(row.permissions),
        delegator_accepted_at=when(row.delegator_accepted_at),
        delegatee_accepted_at=when(row.delegatee_accepted_at),
        expires_at=utc(row.expires_at).isoformat(),
        revoked=row.revoked_at is not None,
        revoked_at=when(row.revoked_at),
        created_at=utc(row.created_at).isoformat(),
    )


def export_delegations(session: Session, token: str) -> list[ExportedDelegation]:
    """Every delegation ``token`` is a party to, oldest first, with its whole history (for
    a data-subject export: the caller has been authorised)."""
    rows = session.scalars(
        select(DelegationRow)
        .where(or_(DelegationRow.delegator_token == token, DelegationRow.delegatee_token == token))
        .order_by(DelegationRow.created_at, DelegationRow.id)
    )
    return [_export_view(row, token) for row in rows]
