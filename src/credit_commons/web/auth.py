"""Who is signed in, and the three things a sign-in method does with a session.

- :func:`require` (or the dependency :func:`requires`) gives a page its signed-in
  :class:`~credit_commons.web.sessions.WebSession` of one of the allowed roles; a visitor
  who is not signed in is sent (303) to ``/signin?next=<this page>``; one signed in with
  another role gets the 403 page.
- :func:`start_session` signs a visitor in: a *new* session id (rotation: the session the
  request came with, if any, is ended), set in the cookie of ``response``.
- :func:`end_session` signs this browser out; :func:`end_all_sessions` ends every session
  of a subject (sign out everywhere).

``next`` is only ever a local path (:func:`safe_next`): an absolute or scheme-relative URL
is replaced by ``/``, so a link cannot send a visitor elsewhere after signing in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import quote

from fastapi import Request, Response

from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError
from credit_commons.runtime import Runtime
from credit_commons.web.cookies import read_cookie
from credit_commons.web.sessions import (
    COOKIE,
    WebSession,
    clear_session_cookie,
    create_session,
    current_session,
    delete_all_sessions,
    delete_session,
    remember_session,
    set_session_cookie,
)

__all__ = [
    "SignInRequired",
    "WrongRole",
    "end_all_sessions",
    "end_session",
    "require",
    "requires",
    "safe_next",
    "start_session",
]

log = logging.getLogger("credit_commons.web")


class SignInRequired(CommonsError):
    """The page needs a signed-in visitor: answered 303 to ``/signin?next=…``.  With
    ``ended``, the visitor's session had ended (a form sent with an expired or unknown
    session cookie): the answer also expires that cookie and says so in a flash."""

    code = "web.sign_in_required"
    title = "Sign in"
    status = 303

    def __init__(self, next_path: str, *, ended: bool = False) -> None:
        super().__init__("sign in to see this page")
        self.next_path = safe_next(next_path)
        self.ended = ended

    def location(self) -> str:
        """Where the visitor is sent: the sign-in page, coming back here afterwards."""
        return "/signin?next=" + quote(self.next_path, safe="/")


class WrongRole(CommonsError):
    """The visitor is signed in, but not with a role this page is for: the 403 page."""

    code = "web.wrong_role"
    title = "Not permitted"
    status = 403


def safe_next(value: str | None) -> str:
    """``value`` if it is a local path (``/borrower?x=1``), else ``/``: no scheme, no host,
    no ``//`` or ``/\\`` (which browsers read as another host), no control characters."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or len(value) > 2000
        or any(ord(c) < 0x20 or c in "\\\x7f" for c in value)
    ):
        return "/"
    return value


def _here(request: Request) -> str:
    return request.url.path + ("?" + request.url.query if request.url.query else "")


def require(request: Request, *roles: str) -> WebSession:
    """The signed-in session of ``request`` with one of ``roles`` (any role when none is
    given).  Does database I/O: call it from a plain ``def`` handler.

    Raises :class:`SignInRequired` (303 to the sign-in page) when nobody is signed in and
    :class:`WrongRole` (403) when the session's role is not one of ``roles``.
    """
    found = current_session(request)
    if found is None:
        raise SignInRequired(_here(request))
    if roles and found.role not in roles:
        raise WrongRole("this page is for another kind of account")
    return found


def requires(*roles: str) -> Callable[[Request], WebSession]:
    """:func:`require` as a FastAPI dependency:
    ``me: Annotated[WebSession, Depends(requires("borrower"))]``."""

    def dependency(request: Request) -> WebSession:
        return require(request, *roles)

    return dependency


def start_session(
    request: Request,
    response: Response,
    *,
    role: str,
    subject: str,
    display_name: str,
    token_hash: str | None = None,
) -> WebSession:
    """Sign the visitor in as ``subject`` with ``role``: a new session (the one this
    request carried, if any, is ended first: rotation), its id set in the cookie of
    ``response``.  The caller has authenticated the visitor — with the platform token
    whose SHA-256 is ``token_hash``, when that is how: each request then checks the token
    still stands.  Raises
    :class:`~credit_commons.core.errors.ValidationError` for an unknown role or an empty
    subject or display name."""
    runtime: Runtime = request.app.state.runtime
    earlier = read_cookie(request, COOKIE)
    with transaction(runtime.sessions) as session:
        if earlier:
            delete_session(session, earlier)
        session_id, view = create_session(
            session,
            runtime,
            role=role,
            subject=subject,
            display_name=display_name,
            token_hash=token_hash,
        )
    set_session_cookie(request, response, session_id)
    remember_session(request, view)
    log.info(
        "console sign-in",
        extra={
            "fields": {"role": role, "actor": runtime.pseudonymizer.pseudonym("actor", subject)}
        },
    )
    return view


def end_session(request: Request, response: Response) -> None:
    """Sign this browser out: its session ends and its cookie is expired."""
    runtime: Runtime = request.app.state.runtime
    earlier = read_cookie(request, COOKIE)
    if earlier:
        with transaction(runtime.sessions) as session:
            delete_session(session, earlier)
    clear_session_cookie(request, response)
    remember_session(request, None)


def end_all_sessions(request: Request, response: Response, subject: str) -> int:
    """Sign ``subject`` out everywhere: every one of their sessions ends (this browser's
    cookie is expired too); how many ended."""
    runtime: Runtime = request.app.state.runtime
    with transaction(runtime.sessions) as session:
        ended = delete_all_sessions(session, subject)
    clear_session_cookie(request, response)
    remember_session(request, None)
    return ended
