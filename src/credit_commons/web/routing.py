"""The router every console page module builds its routes on, and what it guarantees.

:func:`page_router` returns a FastAPI ``APIRouter`` whose routes are left out of the OpenAPI
document, answer HTML by default, and refuse any unsafe request (POST, PUT, PATCH, DELETE)
whose form does not carry this visitor's CSRF token (:mod:`~credit_commons.web.csrf`) —
before the handler runs, so a page module cannot forget the check.

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
from credit_commons.web.cookies import read_cookie
from credit_commons.web.sessions import current_session

__all__ = ["SAFE_METHODS", "Area", "SignInMethod", "check_csrf", "page_router"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


def _expected(request: Request) -> str | None:
    session = current_session(request)
    if session is not None:
        return session.csrf_secret
    if not read_cookie(request, csrf.COOKIE):
        return None  # no cookie, no anonymous token to match
    return csrf.anonymous_token(request)


async def check_csrf(request: Request) -> None:
    """The guard of every unsafe request to a page router: the form's ``csrf_token``
    must be this visitor's.  Raises :class:`~credit_commons.web.csrf.CsrfRefused`."""
    if request.method in SAFE_METHODS:
        return
    form = await request.form()  # parsed once: the handler's Form() fields reuse it
    submitted = form.get(csrf.FIELD)
    expected = await run_in_threadpool(_expected, request)
    csrf.check_token(submitted, expected)


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
