"""The security headers of every console page, added by :class:`HtmlHeadersMiddleware`.

- ``Content-Security-Policy``: nothing but the platform's own scripts, styles, images and
  fonts; no inline script or style; forms post only here; no framing; no ``<base>``.
- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``.
- ``Cache-Control: no-store`` unless the response set its own: pages are personal (a
  signed-in visitor's data, a CSRF token), so no browser or proxy cache may keep them.
- ``Strict-Transport-Security: max-age=31536000`` on every response to a console request
  made over HTTPS, and on every one in production (:data:`HSTS`): a browser that has seen
  the console once never asks it over plain HTTP again, where its cookies could be taken.

Every response to a console request — pages, error pages, static assets — also carries
``Server-Timing: app;dur=<ms>`` (W3C Server Timing): the time from this middleware (the
app's outermost) receiving the request to the response's start, so every other middleware,
the routing, the handler's database work and the rendering included.  What a browser's
developer tools show beside the network time, and what ``bench/web.py`` measures.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CSP",
    "HSTS",
    "SECURITY_HEADERS",
    "SERVER_TIMING",
    "HtmlHeadersMiddleware",
    "is_console_request",
    "server_timing",
]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
"""The headers every HTML page carries (``Cache-Control`` besides, when it has none)."""
HSTS = ("Strict-Transport-Security", "max-age=31536000")
"""Sent on console responses over HTTPS, or in production (one year)."""
SERVER_TIMING = "server-timing"
"""The header that carries a console response's server time (``app;dur=<ms>``)."""
_PACKAGE = "credit_commons.web"
_RAW = tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS)
_HSTS = (HSTS[0].lower().encode("latin-1"), HSTS[1].encode("latin-1"))


def is_console_request(scope: Scope) -> bool:
    """Whether the request of ``scope`` is the console's: it was routed to a console
    route, or — routed nowhere (an unknown path) — it is not under ``/v1/`` and its
    ``Accept`` asks for HTML, as a browser's does."""
    endpoint = scope.get("endpoint")
    if endpoint is not None:
        return str(getattr(endpoint, "__module__", "")).startswith(_PACKAGE)
    path = str(scope.get("path", ""))
    if path.startswith("/v1/"):
        return False
    accept = dict(scope.get("headers") or []).get(b"accept", b"")
    return b"text/html" in accept


def server_timing(value: str) -> float | None:
    """The ``app`` duration in milliseconds of a ``Server-Timing`` header ``value``, or
    None when it has none."""
    for metric in value.split(","):
        name, *params = (part.strip() for part in metric.split(";"))
        if name != "app":
            continue
        for param in params:
            key, _, number = param.partition("=")
            if key.strip() == "dur":
                try:
                    return float(number)
                except ValueError:
                    return None
    return None


class HtmlHeadersMiddleware:
    """Adds :data:`SECURITY_HEADERS` (and ``Cache-Control: no-store`` when absent) to every
    HTML response to a console request (:func:`is_console_request`), whichever handler or
    error produced it; ``Server-Timing`` — and :data:`HSTS` when the request is HTTPS or
    ``production`` is set — to every response to a console request.  Other HTML — the
    API's Swagger UI page, whose inline script this policy would block — is left as it is,
    and the API's responses carry neither timing nor HSTS."""

    def __init__(self, app: ASGIApp, *, production: bool = False) -> None:
        self.app = app
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and is_console_request(scope):
                elapsed = (time.perf_counter() - start) * 1000
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    headers += [h for h in _RAW if h[0] not in names]
                    if b"cache-control" not in names:
                        headers.append((b"cache-control", b"no-store"))
                if SERVER_TIMING.encode() not in names:
                    headers.append((SERVER_TIMING.encode(), b"app;dur=%.3f" % elapsed))
                https = scope.get("scheme") == "https"
                if (https or self.production) and _HSTS[0] not in names:
                    headers.append(_HSTS)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
