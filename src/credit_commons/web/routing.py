"""The router every console page module builds its routes on, and what it guarantees.

:func:`page_router` returns a FastAPI ``APIRouter`` whose routes are left out of the OpenAPI
document, answer HTML by default, and refuse any unsafe request (POST, PUT, PATCH, DELETE)
whose form does not carry this visitor's CSRF token (:mod:`~credit_commons.web.csrf`) —
before the handler runs, so a page module cannot forget the check.  A form sent with a
session cookie whose session has ended (expired, signed out elsewhere, unknown) is not
refused but answered, before the CSRF comparison and doing nothing else, by the sign-in
page (303 to ``/signin?next=…``: the form's ``next`` field, else its own path) with a flash
saying the session ended — except the sign-in and sign-out forms themselves.

An :class:`Area` is what a page module hands to the console (``web/routes.py``): its router,
and the sign-in methods it adds to ``/signin``, if any.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from credit_commons.web import csrf
from credit_commons.web.auth import SignInRequired
from credit_commons.web.cookies import read_cookie
from credit_commons.web.sessions import COOKIE, current_session

__all__ = ["SAFE_METHODS", "Area", "SignInMethod", "check_csrf", "page_router"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WITHOUT_SESSION = ("/signin", "/signout")
"""Forms sent without a live session as a matter of course (by path prefix)."""


@dataclass(frozen=True)
class SignInMethod:
    """A way to sign in that a page module offers, listed on ``/signin``: the ``path`` of
    its own page (under ``/signin/``, so it counts in the ``web-signin`` rate limit), its
    ``label`` (an ``N_``-marked English msgid) and the ``roles`` it signs in as."""

    path: str
    label: str
    roles: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.path.startswith("/signin/"):
            raise ValueError("a sign-in method's page lives under /signin/")


@dataclass(frozen=True)
class Area:
    """A part of the console: its router and the sign-in methods it adds."""

    router: APIRouter
    sign_in: Sequence[SignInMethod] = field(default=())


def _expected(request: Request) -> tuple[str | None, bool]:
    """The CSRF token this visitor's form must carry, and whether the request came with
    the cookie of a session that has ended."""
    session = current_session(request)
    if session is not None:
        return session.csrf_secret, False
    ended = bool(read_cookie(request, COOKIE))
    if not read_cookie(request, csrf.COOKIE):
        return None, ended  # no cookie, no anonymous token to match
    return csrf.anonymous_token(request), ended


async def check_csrf(request: Request) -> None:
    """The guard of every unsafe request to a page router: the form's ``csrf_token``
    must be this visitor's.  Raises :class:`~credit_commons.web.csrf.CsrfRefused`, or
    :class:`~credit_commons.web.auth.SignInRequired` (``ended``) when the request's
    session cookie names a session that has ended."""
    if request.method in SAFE_METHODS:
        return
    form = await request.form()  # parsed once: the handler's Form() fields reuse it
    expected, ended = await run_in_threadpool(_expected, request)
    if ended and not request.url.path.startswith(_WITHOUT_SESSION):
        back = form.get("next")
        raise SignInRequired(back if isinstance(back, str) else request.url.path, ended=True)
    csrf.check_token(form.get(csrf.FIELD), expected)


def page_router(**kwargs: Any) -> APIRouter:
    """An ``APIRouter`` for console pages (keyword arguments as ``APIRouter``'s, e.g.
    ``prefix="/borrower"``): HTML, not in the OpenAPI document, CSRF-checked."""
    dependencies = [Depends(check_csrf), *kwargs.pop("dependencies", [])]
    return APIRouter(
        include_in_schema=False,
        default_response_class=HTMLResponse,
        dependencies=dependencies,
        **kwargs,
    )
