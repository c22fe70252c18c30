"""Errors on console pages are HTML pages: 403, 404, 429 (with ``Retry-After``), 500
(without details) and the rest — never problem+json, never a stack trace.  The API's
problem+json answers for everything else stay as they are.

A request is the console's when it was routed to a console page, or — not routed at all
(an unknown path) — when it is not under ``/v1/`` and its ``Accept`` asks for HTML, as a
browser's does.  :func:`install_error_pages` wraps the app's exception handlers: the API's
handler still runs first (so a refused access is recorded exactly as the API records it),
and a console request gets the HTML page of the same status instead of its body.
"""

from __future__ import annotations

from collections.abc import Callable
from inspect import isawaitable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.types import Scope, Send

from credit_commons.web import i18n
from credit_commons.web.auth import SignInRequired
from credit_commons.web.headers import SECURITY_HEADERS, is_console_request
from credit_commons.web.render import environment

__all__ = ["error_page", "install_error_pages", "is_console_request", "send_error_page"]

_KEPT_HEADERS = ("retry-after", "allow")
Handler = Callable[[Request, Any], Any]


def error_page(scope: Scope, status: int, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The HTML page of ``status`` in the visitor's language, with the security headers
    and ``no-store``.  Reads no session and no database, so it renders even when the
    database is what failed."""
    cookies = _cookies(scope)
    raw_headers = dict(scope.get("headers") or [])
    language = i18n.negotiate(
        cookies.get(i18n.COOKIE), raw_headers.get(b"accept-language", b"").decode("latin-1")
    )
    path = str(scope.get("path", "/"))
    context: dict[str, Any] = {
        "lang": language,
        "languages": [(lang, f"/lang/{lang.code}?next=/") for lang in i18n.LANGUAGES],
        "csrf_token": "",
        "session": None,
        "flashes": [],
        "path": path,
        "status": status,
    }
    html = environment(language.code).get_template("error.html").render(context)
    all_headers = {**dict(SECURITY_HEADERS), "Cache-Control": "no-store", **(headers or {})}
    return HTMLResponse(html, status_code=status, headers=all_headers)


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
    async def _sign_in(_request: Request, error: SignInRequired) -> Response:
        return RedirectResponse(error.location(), status_code=303)
