"""Errors on console pages are HTML pages: 403, 404, 429 (with ``Retry-After``), 500
(without details) and the rest — never problem+json, never a stack trace.  The API's
problem+json answers for everything else stay as they are.

A request is the console's when it was routed to a console page, or — not routed at all
(an unknown path) — when it is not under ``/v1/`` and its ``Accept`` asks for HTML, as a
browser's does.  :func:`install_error_pages` wraps the app's exception handlers: the API's
handler still runs first (so a refused access is recorded exactly as the API records it),
and a console request gets the HTML page of the same status instead of its body.

Refusals decided before routing — the size limits' 431 and 413, admission's 503 — answer a
console page (``/``, ``/signin…``, ``/borrower…``, ``/agent…``, ``/lender…``, ``/issuer…``,
``/audit…``: the gateway's ``is_console_page``) with :func:`prerendered_page`: the error page of the
status in each language, rendered once (at start-up, by :func:`prerender_pages`), so an
overloaded or attacked process renders no template to refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from inspect import isawaitable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.types import Scope, Send

from credit_commons.web import i18n
from credit_commons.web.auth import SignInRequired
from credit_commons.web.flash import add_flash
from credit_commons.web.headers import SECURITY_HEADERS, is_console_request
from credit_commons.web.i18n import N_
from credit_commons.web.render import environment
from credit_commons.web.sessions import clear_session_cookie

__all__ = [
    "PRERENDERED",
    "SESSION_ENDED",
    "error_page",
    "install_error_pages",
    "is_console_request",
    "prerender_pages",
    "prerendered_page",
    "send_error_page",
    "send_prerendered_page",
]

SESSION_ENDED = N_("Your session has ended. Please sign in again.")
"""The flash of a visitor sent to sign in because their session had ended."""

_KEPT_HEADERS = ("retry-after", "allow")
Handler = Callable[[Request, Any], Any]


def _render(language: i18n.Language, status: int, path: str) -> str:
    context: dict[str, Any] = {
        "lang": language,
        "languages": [(lang, f"/lang/{lang.code}?next=/") for lang in i18n.LANGUAGES],
        "csrf_token": "",
        "session": None,
        "flashes": [],
        "path": path,
        "status": status,
    }
    return environment(language.code).get_template("error.html").render(context)


def _language(scope: Scope) -> i18n.Language:
    raw_headers = dict(scope.get("headers") or [])
    return i18n.negotiate(
        _cookies(scope).get(i18n.COOKIE),
        raw_headers.get(b"accept-language", b"").decode("latin-1"),
    )


def error_page(scope: Scope, status: int, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The HTML page of ``status`` in the visitor's language, with the security headers
    and ``no-store``.  Reads no session and no database, so it renders even when the
    database is what failed."""
    html = _render(_language(scope), status, str(scope.get("path", "/")))
    all_headers = {**dict(SECURITY_HEADERS), "Cache-Control": "no-store", **(headers or {})}
    return HTMLResponse(html, status_code=status, headers=all_headers)


PRERENDERED = (413, 431, 503)
"""The statuses of the refusals decided before routing, whose pages are rendered once."""


@cache
def _prerendered(code: str, status: int) -> bytes:
    language = i18n.language_of(code) or i18n.DEFAULT
    return _render(language, status, "/").encode("utf-8")


def prerender_pages() -> None:
    """Render the page of each status in :data:`PRERENDERED` in every language now (at
    start-up), so that a refusal before routing only looks it up.  Raises what Jinja raises."""
    for language in i18n.LANGUAGES:
        for status in PRERENDERED:
            _prerendered(language.code, status)


def prerendered_page(
    cookie: str | None, accept_language: str | None, status: int
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The page of ``status`` (one of :data:`PRERENDERED`) in the language the ``lang``
    cookie's value or ``Accept-Language`` asks for, and its response headers (type,
    length, the security headers, ``no-store``).  Raises ``KeyError`` for another status."""
    if status not in PRERENDERED:
        raise KeyError(status)
    body = _prerendered(i18n.negotiate(cookie, accept_language).code, status)
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode("latin-1")),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS),
        (b"cache-control", b"no-store"),
    ]
    return body, headers


async def send_prerendered_page(
    scope: Scope, send: Send, status: int, headers: list[tuple[str, str]]
) -> None:
    """Answer with the pre-rendered page of ``status`` (:func:`prerendered_page`) from a
    pure ASGI middleware, in the visitor's language, with the extra response ``headers``
    (``Retry-After``, ``Connection``)."""
    raw_headers = dict(scope.get("headers") or [])
    body, raw = prerendered_page(
        _cookies(scope).get(i18n.COOKIE),
        raw_headers.get(b"accept-language", b"").decode("latin-1"),
        status,
    )
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _cookies(scope: Scope) -> dict[str, str]:
    header = dict(scope.get("headers") or []).get(b"cookie", b"").decode("latin-1")
    found: dict[str, str] = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            found.setdefault(name, value)
    return found


async def send_error_page(
    scope: Scope, send: Send, status: int, headers: list[tuple[str, str]]
) -> None:
    """Answer with the error page of ``status`` from a pure ASGI middleware (the rate
    limiter's 429, before routing), with the extra response ``headers``."""
    response = error_page(scope, status)
    raw = [*response.raw_headers]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": response.body})


def _wrap(original: Handler) -> Handler:
    async def handler(request: Request, error: Exception) -> Response:
        answered: Response
        answered = original(request, error)
        if isawaitable(answered):
            answered = await answered
        if not is_console_request(request.scope):
            return answered
        kept = {k: v for k, v in answered.headers.items() if k.lower() in _KEPT_HEADERS}
        return error_page(request.scope, answered.status_code, kept)

    return handler


def install_error_pages(app: FastAPI) -> None:
    """Make every exception handler installed so far answer console requests with an HTML
    page (call it after the API's handlers are installed), and send a visitor who must sign
    in to the sign-in page."""
    for key, original in list(app.exception_handlers.items()):
        app.exception_handlers[key] = _wrap(original)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, error: SignInRequired) -> Response:
        response = RedirectResponse(error.location(), status_code=303)
        if error.ended:
            clear_session_cookie(request, response)
            add_flash(request, response, SESSION_ENDED, "info")
        return response
