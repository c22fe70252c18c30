"""Lender console tokens: how a lender's staff sign in to the web console (``/lender``).

A lender reaches the API as an OAuth client with its own keys (``private_key_jwt``); a
person at the lender, in a browser, has no such key.  An administrator therefore issues a
**console token** bound to one registered client (``commons admin lender console-token``):
a random secret (``ccl_…``, 256 bits) shown once and stored only as its SHA-256, expiring
(30 days unless told otherwise, at most a year), revocable, with a label saying whose it
is.  It is accepted only while it is unexpired, unrevoked and its client active: a
suspended (deactivated) or unknown lender's tokens sign nobody in — and the console checks
the token again on every page (:func:`console_grant`), so a revocation or a suspension
ends the staff's sessions at their next request.

The token works only for the console's sign-in: its prefix is not the platform token's
(``cct_``) and no API authenticates it.  Issuing and revoking record
``lender.console_token_issued`` / ``lender.console_token_revoked`` (the client's digest as
the object; never the token).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.errors import ConflictError, NotFoundError, ValidationError
from credit_commons.core.ids import new_id
from credit_commons.events import EventDetails, Token, record_event
from credit_commons.identity import Principal, actor_of
from credit_commons.lenders.models import ConsoleTokenRow, LenderClientRow
from credit_commons.lenders.service import get_client
from credit_commons.runtime import Runtime

__all__ = [
    "CONSOLE_TOKEN_PREFIX",
    "ConsoleGrant",
    "ConsoleTokenIssued",
    "ConsoleTokenRevoked",
    "ConsoleTokenView",
    "IssuedConsoleToken",
    "console_grant",
    "console_sign_in",
    "issue_console_token",
    "list_console_tokens",
    "revoke_console_token",
]

CONSOLE_TOKEN_PREFIX = "ccl_"  # noqa: S105 - a prefix, not a secret
_DEFAULT_DAYS = 30
_MAX_DAYS = 365
_TOKEN_ID = "lct_"  # noqa: S105 - an id prefix, not a secret


class ConsoleTokenIssued(EventDetails, event_type="lender.console_token_issued"):
    """An administrator issued a console token for a lender client (object: the client)."""

    token: Token
    days: int


class ConsoleTokenRevoked(EventDetails, event_type="lender.console_token_revoked"):
    """A console token was revoked (object: its client)."""

    token: Token


@dataclass(frozen=True)
class IssuedConsoleToken:
    """A new console token: its id (for revoking), the secret (shown once) and expiry."""

    token_id: str
    token: str
    client_id: str
    expires_at: datetime


@dataclass(frozen=True)
class ConsoleTokenView:
    """A console token as an administrator lists it (never its secret)."""

    token_id: str
    client_id: str
    label: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class ConsoleGrant:
    """What a live console token lets its holder act as: the lender client, its name and
    allowed purposes, and the token's id and label."""

    token_id: str
    label: str
    client_id: str
    name: str
    purposes: frozenset[str]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise NotFoundError("no such resource")


def issue_console_token(
    session: Session,
    rt: Runtime,
    principal: Principal,
    client_id: str,
    *,
    label: str,
    days: int = _DEFAULT_DAYS,
) -> IssuedConsoleToken:
    """A console token for ``client_id`` (administrators; others, and unknown clients, get
    :class:`NotFoundError`), valid ``days`` days; records ``lender.console_token_issued``.

    Raises :class:`ConflictError` for a suspended (inactive) client and
    :class:`ValidationError` for a label that is not 1-100 characters or ``days`` outside
    1-365.
    """
    _admin(principal)
    client = session.get(LenderClientRow, client_id) if isinstance(client_id, str) else None
    if client is None:
        raise NotFoundError("no such lender client")
    if not client.active:
        raise ConflictError("the lender client is suspended: no console token for it")
    label = label.strip() if isinstance(label, str) else ""
    if not 1 <= len(label) <= 100:
        raise ValidationError("label must be 1-100 characters", extra={"field": "label"})
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= _MAX_DAYS:
        raise ValidationError(f"days must be 1-{_MAX_DAYS}", extra={"field": "days"})
    now = rt.clock.now()
    token = CONSOLE_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ConsoleTokenRow(
        id=new_id("lct"),
        token_hash=_digest(token),
        client_id=client.client_id,
        label=label,
        created_at=now,
        expires_at=now + timedelta(days=days),
        revoked_at=None,
    )
    session.add(row)
    record_event(
        session,
        ConsoleTokenIssued(token=row.id, days=days),
        actor=actor_of(rt, principal),
        at=now,
        object=rt.objects.digest("lender_client", client.client_id),
    )
    return IssuedConsoleToken(row.id, token, client.client_id, row.expires_at)


def revoke_console_token(
    session: Session, rt: Runtime, principal: Principal, token_id: str
) -> ConsoleTokenView:
    """Revoke console token ``token_id`` (administrators; others, and unknown ids, get
    :class:`NotFoundError`); records ``lender.console_token_revoked`` the first time.
    Revoking a revoked token changes nothing."""
    _admin(principal)
    row = session.get(ConsoleTokenRow, token_id, with_for_update=True)
    if row is None:
        raise NotFoundError("no such console token")
    if row.revoked_at is None:
        row.revoked_at = rt.clock.now()
        record_event(
            session,
            ConsoleTokenRevoked(token=row.id),
            actor=actor_of(rt, principal),
            at=row.revoked_at,
            object=rt.objects.digest("lender_client", row.client_id),
        )
    return _view(row)


def list_console_tokens(
    session: Session, principal: Principal, client_id: str
) -> list[ConsoleTokenView]:
    """The console tokens of ``client_id``, newest first (administrators; others get
    :class:`NotFoundError`)."""
    _admin(principal)
    rows = session.scalars(
        select(ConsoleTokenRow)
        .where(ConsoleTokenRow.client_id == client_id)
        .order_by(ConsoleTokenRow.id.desc())
        .limit(200)
    )
    return [_view(r) for r in rows]


def _view(row: ConsoleTokenRow) -> ConsoleTokenView:
    return ConsoleTokenView(
        token_id=row.id,
        client_id=row.client_id,
        label=row.label,
        created_at=utc(row.created_at),
        expires_at=utc(row.expires_at),
        revoked_at=utc(row.revoked_at) if row.revoked_at is not None else None,
    )


def _grant(session: Session, rt: Runtime, row: ConsoleTokenRow | None) -> ConsoleGrant | None:
    # A live token of an active client: unexpired, unrevoked, its client registered and
    # active.  None otherwise, whatever the reason.
    if row is None or row.revoked_at is not None or utc(row.expires_at) <= rt.clock.now():
        return None
    client = get_client(session, row.client_id)
    if client is None or not client.active:
        return None
    return ConsoleGrant(
        token_id=row.id,
        label=row.label,
        client_id=client.client_id,
        name=client.name,
        purposes=frozenset(client.allowed_purposes),
    )


def console_sign_in(session: Session, rt: Runtime, token: str) -> ConsoleGrant | None:
    """The grant of console token ``token`` if it may sign in now (unexpired, unrevoked,
    its client active), else ``None`` — one answer whatever the reason.  Raises nothing
    for any input."""
    if not isinstance(token, str) or not token.startswith(CONSOLE_TOKEN_PREFIX):
        return None
    if len(token) > 200:
        return None
    row = session.scalar(
        select(ConsoleTokenRow).where(ConsoleTokenRow.token_hash == _digest(token))
    )
    return _grant(session, rt, row)


def console_grant(session: Session, rt: Runtime, token_id: str) -> ConsoleGrant | None:
    """The grant of console token ``token_id`` (a signed-in session's) if it is still live:
    what the console checks on every page, so revoking the token or suspending the
    lender signs its staff out.  ``None`` otherwise."""
    if not isinstance(token_id, str) or not token_id.startswith(_TOKEN_ID):
        return None
    return _grant(session, rt, session.get(ConsoleTokenRow, token_id))
