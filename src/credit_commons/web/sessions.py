"""Server-side sessions of the console.

The cookie (``session``, with the flags of :mod:`~credit_commons.web.cookies`) holds a
random id of 256 bits; the ``web_sessions`` table holds only its SHA-256, with the role
(:data:`ROLES`), the subject, a display name, the CSRF secret and three times.  A session
ends at the first of:

- :data:`IDLE` (30 minutes) without a request (``last_seen_at``, refreshed at most once a
  minute so that reading pages does not write on every request);
- :data:`ABSOLUTE` (12 hours) after sign-in (``expires_at``), however active;
- sign-out (:func:`end_session`) or "sign out everywhere" (:func:`end_all_sessions`);
- the sign-in no longer standing, checked at each request (:func:`current_session`): the
  platform token it was made with (its SHA-256 is kept with the session, never the token)
  removed or expired, or the identity erased (``identity.signed_in_still``).  A lender's
  session is checked against its console token by ``web/lender.py`` instead.

A subject keeps at most :data:`MAX_PER_SUBJECT` sessions: signing in once more ends the
oldest.  Rows exist only for successful sign-ins, so no outsider can fill the table.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi import Request, Response
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.db import transaction
from credit_commons.core.errors import ValidationError
from credit_commons.identity import signed_in_still
from credit_commons.runtime import Runtime
from credit_commons.web.cookies import delete_cookie, read_cookie, set_cookie
from credit_commons.web.models import WebSessionRow

__all__ = [
    "ABSOLUTE",
    "COOKIE",
    "IDLE",
    "MAX_PER_SUBJECT",
    "ROLES",
    "WebSession",
    "create_session",
    "current_session",
    "delete_all_sessions",
    "delete_session",
    "keep_offer_code",
    "lookup_session",
    "prune_sessions",
    "standing",
    "take_offer_code",
]

COOKIE = "session"
ROLES = ("borrower", "agent", "lender", "issuer")
"""The roles a console session can have."""
IDLE = timedelta(minutes=30)
"""A session ends this long after its last request."""
ABSOLUTE = timedelta(hours=12)
"""A session ends this long after sign-in, however active."""
MAX_PER_SUBJECT = 20
_TOUCH_EVERY = timedelta(minutes=1)
_STATE_KEY = "web_session"
_UNSET = object()


@dataclass(frozen=True)
class WebSession:
    """A signed-in visitor: their ``role`` (one of :data:`ROLES`), ``subject`` (an
    identity's ``idt_…``, ``admin:<name>``, a lender client id…), the ``display_name``
    the header shows, the session's ``csrf_secret``, when it ``expires_at`` and the SHA-256
    of the platform token it was made with (``token_hash``; None for another method)."""

    role: str
    subject: str
    display_name: str
    csrf_secret: str
    created_at: datetime
    expires_at: datetime
    token_hash: str | None = field(default=None, repr=False)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _view(row: WebSessionRow) -> WebSession:
    return WebSession(
        row.role,
        row.subject,
        row.display_name,
        row.csrf_secret,
        utc(row.created_at),
        utc(row.expires_at),
        row.token_hash,
    )


def create_session(
    session: Session,
    rt: Runtime,
    *,
    role: str,
    subject: str,
    display_name: str,
    token_hash: str | None = None,
) -> tuple[str, WebSession]:
    """Write a new session for ``subject`` as ``role`` (made with the platform token whose
    SHA-256 is ``token_hash``, if any); its id (for the cookie, shown nowhere else) and its
    view.  Ends the subject's oldest sessions beyond
    :data:`MAX_PER_SUBJECT`.  Raises :class:`ValidationError` for an unknown role or an
    empty or over-long subject or display name."""
    if role not in ROLES:
        raise ValidationError(f"a console role is one of {', '.join(ROLES)}")
    if not 0 < len(subject) <= 200 or not 0 < len(display_name) <= 200:
        raise ValidationError("a session needs a subject and a display name of 1-200 characters")
    now = rt.clock.now()
    session_id = secrets.token_urlsafe(32)
    row = WebSessionRow(
        id_hash=_digest(session_id),
        role=role,
        subject=subject,
        display_name=display_name,
        csrf_secret=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + ABSOLUTE,
        token_hash=token_hash,
    )
    kept = session.scalars(
        select(WebSessionRow.id_hash)
        .where(WebSessionRow.subject == subject)
        .order_by(WebSessionRow.created_at.desc())
        .limit(MAX_PER_SUBJECT - 1)
    ).all()
    session.execute(
        delete(WebSessionRow).where(
            WebSessionRow.subject == subject, WebSessionRow.id_hash.not_in(kept)
        )
    )
    session.add(row)
    session.flush()
    return session_id, _view(row)


def lookup_session(session: Session, rt: Runtime, session_id: str) -> WebSession | None:
    """The live session whose id is ``session_id``, its last-seen time refreshed; None
    (and the row deleted) when it is unknown, idle too long or past its absolute expiry."""
    if not 16 <= len(session_id) <= 128:
        return None
    row = session.get(WebSessionRow, _digest(session_id))
    if row is None:
        return None
    now = rt.clock.now()
    if utc(row.expires_at) <= now or utc(row.last_seen_at) + IDLE <= now:
        session.delete(row)
        return None
    if now - utc(row.last_seen_at) >= _TOUCH_EVERY:
        row.last_seen_at = now
    return _view(row)


def delete_session(session: Session, session_id: str) -> None:
    """End the session whose id is ``session_id`` (nothing when there is none)."""
    session.execute(delete(WebSessionRow).where(WebSessionRow.id_hash == _digest(session_id)))


def delete_all_sessions(session: Session, subject: str) -> int:
    """End every session of ``subject``; how many there were."""
    result = session.execute(delete(WebSessionRow).where(WebSessionRow.subject == subject))
    return int(getattr(result, "rowcount", 0) or 0)


def keep_offer_code(
    session: Session, session_id: str, offer_id: str, tx_code: str, until: datetime
) -> None:
    """Keep the transaction code of offer ``offer_id`` with the session of ``session_id``
    until ``until`` (the issuer desk shows it once: :func:`take_offer_code`), replacing
    any code kept before."""
    session.execute(
        update(WebSessionRow)
        .where(WebSessionRow.id_hash == _digest(session_id))
        .values(offer_id=offer_id, offer_tx_code=tx_code, offer_tx_until=until)
    )


def take_offer_code(session: Session, session_id: str, offer_id: str, now: datetime) -> str | None:
    """The transaction code kept with the session of ``session_id`` for offer ``offer_id``
    if it is still kept at ``now``; a code taken, or past its time, is cleared."""
    row = session.get(WebSessionRow, _digest(session_id))
    if row is None or row.offer_id is None:
        return None
    live = row.offer_tx_until is not None and utc(row.offer_tx_until) > now
    if row.offer_id != offer_id and live:
        return None  # another offer's code, still to be shown on its own page
    code = row.offer_tx_code if live else None
    row.offer_id = row.offer_tx_code = row.offer_tx_until = None
    return code


def prune_sessions(session: Session, now: datetime) -> int:
    """Delete the sessions past their absolute expiry or idle too long at ``now``, and
    clear the transaction codes kept past their time; how many sessions went (retention:
    run by the platform's periodic work)."""
    result = session.execute(
        delete(WebSessionRow).where(
            (WebSessionRow.expires_at <= now) | (WebSessionRow.last_seen_at <= now - IDLE)
        )
    )
    session.execute(
        update(WebSessionRow)
        .where(WebSessionRow.offer_tx_until <= now)
        .values(offer_id=None, offer_tx_code=None, offer_tx_until=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def current_session(request: Request) -> WebSession | None:
    """The signed-in session of ``request`` (read once per request), or None — also, the
    session then deleted, when it has expired or its sign-in no longer stands
    (:func:`standing`).  Does database I/O: call it from a plain ``def`` handler.

    The session is read in a read-only unit of work, which takes no write lock: a page view
    writes only to refresh ``last_seen_at`` (at most once a minute per session) or to
    delete an ended session, and a cookie naming no session writes nothing."""
    cached = getattr(request.state, _STATE_KEY, _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    found: WebSession | None = None
    session_id = read_cookie(request, COOKIE)
    if session_id and 16 <= len(session_id) <= 128:
        runtime: Runtime = request.app.state.runtime
        with transaction(runtime.read_sessions) as session:
            found, ended, touch_at = _read(session, runtime, _digest(session_id))
        if ended:
            with transaction(runtime.sessions) as session:
                delete_session(session, session_id)
        elif touch_at is not None:
            with transaction(runtime.sessions) as session:
                session.execute(
                    update(WebSessionRow)
                    .where(WebSessionRow.id_hash == _digest(session_id))
                    .values(last_seen_at=touch_at)
                )
    setattr(request.state, _STATE_KEY, found)
    return found


def _read(
    session: Session, rt: Runtime, id_hash: str
) -> tuple[WebSession | None, bool, datetime | None]:
    """The live session whose id's digest is ``id_hash``; whether its row is to be deleted
    (expired, or its sign-in no longer stands); the time to set as its last-seen time, if
    it is due for a refresh."""
    row = session.get(WebSessionRow, id_hash)
    if row is None:
        return None, False, None
    now = rt.clock.now()
    last_seen = utc(row.last_seen_at)
    if utc(row.expires_at) <= now or last_seen + IDLE <= now:
        return None, True, None
    view = _view(row)
    if not standing(session, rt, view):
        return None, True, None
    return view, False, (now if now - last_seen >= _TOUCH_EVERY else None)


def standing(session: Session, rt: Runtime, view: WebSession) -> bool:
    """Whether the sign-in of ``view`` still stands: its platform token still valid, its
    identity not erased (one lookup by primary key).  A lender's session is checked by its
    pages against its console token (``web/lender.py``), so it stands here."""
    if view.role == "lender":
        return True
    return signed_in_still(session, rt, view.subject, view.token_hash)


def remember_session(request: Request, view: WebSession | None) -> None:
    """Make ``view`` the request's session for the rest of this request (after a sign-in
    or sign-out, so the page rendered next shows it)."""
    setattr(request.state, _STATE_KEY, view)


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    """Put the session id in its cookie (a browser-session cookie: it also ends when the
    browser closes)."""
    set_cookie(request, response, COOKIE, session_id, max_age=None)


def clear_session_cookie(request: Request, response: Response) -> None:
    """Expire the session cookie on ``response``."""
    delete_cookie(request, response, COOKIE)
