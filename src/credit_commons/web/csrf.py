"""CSRF tokens for every POST form of the console, checked in constant time.

- **Signed in**: the token is the session's CSRF secret (kept server-side with the session,
  ``web/models.py``) — a synchronizer token.
- **Not signed in** (the sign-in forms): a *signed double submit*.  A random value (128 bits)
  lives in the ``csrf`` cookie (``__Host-``, ``HttpOnly``, ``SameSite=Strict``); the form
  carries its HMAC under the platform's pepper (``Pseudonymizer``, domain ``web.csrf``).  An
  attacker can neither read the cookie nor compute the HMAC of one they planted, and no row
  is written for an anonymous visitor.

A POST whose token is missing or wrong is refused (:class:`CsrfRefused`, a 403 page) before
its handler runs: :func:`~credit_commons.web.routing.page_router` checks every unsafe request.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

from credit_commons.core.errors import CommonsError
from credit_commons.runtime import Runtime
from credit_commons.web.cookies import read_cookie, set_cookie

__all__ = ["COOKIE", "FIELD", "CsrfRefused", "anonymous_token", "check_token", "issue_cookie"]

COOKIE = "csrf"
FIELD = "csrf_token"
"""The name of the hidden form field carrying the token."""
_NEW = "web_csrf_new"
_DOMAIN = "web.csrf"


class CsrfRefused(CommonsError):
    """A form was posted without this visitor's CSRF token; nothing was done."""

    code = "web.csrf_refused"
    title = "Not permitted"
    status = 403


def _seed(request: Request) -> str:
    """The anonymous visitor's random value: the cookie's, or a new one (set on the
    response by :func:`issue_cookie`)."""
    current = read_cookie(request, COOKIE)
    if current and 16 <= len(current) <= 64:
        return current
    fresh: str | None = getattr(request.state, _NEW, None)
    if fresh is None:
        fresh = secrets.token_urlsafe(16)
        setattr(request.state, _NEW, fresh)
    return fresh


def anonymous_token(request: Request) -> str:
    """The CSRF token of a visitor who is not signed in (the HMAC of their cookie)."""
    runtime: Runtime = request.app.state.runtime
    return runtime.pseudonymizer.pseudonym(_DOMAIN, _seed(request))


def issue_cookie(request: Request, response: Response) -> None:
    """Set the ``csrf`` cookie on ``response`` if this request made a new value."""
    fresh: str | None = getattr(request.state, _NEW, None)
    if fresh is not None:
        set_cookie(request, response, COOKIE, fresh, max_age=None)


def check_token(submitted: object, expected: str | None) -> None:
    """Compare a submitted token with the expected one in constant time.

    Raises :class:`CsrfRefused` when either is missing or they differ.
    """
    if not isinstance(submitted, str) or not submitted or not expected:
        raise CsrfRefused("the form has expired; load the page again")
    if not hmac.compare_digest(submitted.encode(), expected.encode()):
        raise CsrfRefused("the form has expired; load the page again")
