"""Request size limits: over-long headers are refused with 431, bodies over the maximum
with 413, both as problem+json and before anything parses them.

Two layers, one set of numbers (``COMMONS_MAX_HEADER_BYTES``, ``COMMONS_MAX_HEADER_LINE_BYTES``,
``COMMONS_MAX_BODY_BYTES``):

- :class:`SizeLimitMiddleware`, in the app, checks what reaches it whatever the server:
  the request line and header section, a declared ``Content-Length``, and a body without
  one (chunked) as it streams in — the bytes are counted chunk by chunk and the request is
  refused as soon as they pass the limit, never buffered beyond it.
- :func:`bounded_httptools_protocol`, for ``commons serve``: uvicorn's httptools parser
  keeps a request's URL and headers in memory without any limit, so the protocol counts
  them as they are parsed and answers 431 before the header section has grown past the
  limit, even if the app never sees the request.

A console page (:func:`~credit_commons.gateway.route_groups.is_console_page`) is refused
with the console's HTML page of the same status instead, rendered at start-up
(:func:`~credit_commons.web.errors.prerendered_page`); a browser shows it, where it would
show problem+json as raw text.

Some routes take more than the default body: :data:`LARGER_BODIES` names them (bulk
issuance: up to 1,000 credentials, ``COMMONS_MAX_BATCH_BODY_BYTES``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from functools import cache, partial
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from credit_commons.core.errors import CommonsError
from credit_commons.core.settings import Settings
from credit_commons.gateway.problems import PROBLEM_JSON
from credit_commons.gateway.route_groups import is_console_page
from credit_commons.web.errors import prerendered_page, send_prerendered_page

__all__ = [
    "LARGER_BODIES",
    "HeadersTooLarge",
    "RequestTooLarge",
    "SizeLimitMiddleware",
    "body_limit",
    "bounded_httptools_protocol",
    "bounded_protocol_factory",
]

LARGER_BODIES: dict[tuple[str, str], Callable[[Settings], int]] = {
    ("POST", "/v1/credentials/batch"): lambda settings: settings.max_batch_body_bytes,
}
"""Routes whose body may exceed ``COMMONS_MAX_BODY_BYTES``, and the setting that bounds them."""


class RequestTooLarge(CommonsError):
    """The request body is larger than this route accepts (RFC 9110 §15.5.14)."""

    code = "request.too_large"
    title = "Request too large"
    status = 413


class HeadersTooLarge(CommonsError):
    """The request line or header section is too large (RFC 6585 §5)."""

    code = "request.headers_too_large"
    title = "Request header fields too large"
    status = 431


def body_limit(settings: Settings, method: str, path: str) -> int:
    """The largest body ``method path`` accepts."""
    larger = LARGER_BODIES.get((method, path))
    return larger(settings) if larger is not None else settings.max_body_bytes


def _problem(error: CommonsError, instance: str | None) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = json.dumps(error.problem(instance=instance)).encode("utf-8")
    headers = [
        (b"content-type", PROBLEM_JSON.encode("latin-1")),
        (b"content-length", str(len(body)).encode("latin-1")),
        (b"connection", b"close"),
    ]
    return body, headers


class _BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the limit (the app may read the
    body anywhere; the middleware answers 413 whatever the app then tries to send)."""


class SizeLimitMiddleware:
    """Refuses over-long request lines and headers (431) and over-large bodies (413)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def _headers_too_large(self, scope: Scope) -> bool:
        line = len(scope.get("method", "")) + len(scope.get("raw_path") or b"") + 10
        line += len(scope.get("query_string") or b"") + 1
        limit = self.settings.max_header_line_bytes
        if line > limit:
            return True
        total = line
        for name, value in scope.get("headers") or []:
            size = len(name) + len(value) + 4  # "name: value\r\n"
            if size > limit:
                return True
            total += size
        return total > self.settings.max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._headers_too_large(scope):
            await _send(scope, send, HeadersTooLarge("the request header section is too large"))
            return
        limit = body_limit(self.settings, scope.get("method", ""), scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send(scope, send, RequestTooLarge(f"the body is larger than {limit} bytes"))
            return
        received = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the 413 below is the answer
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        # The app may read the body anywhere (FastAPI turns a failed read into a 400, which
        # guarded_send drops): whatever happens, the answer is the 413.
        with contextlib.suppress(_BodyTooLarge):
            await self.app(scope, counted_receive, guarded_send)
        if exceeded and not started:
            await _send(scope, send, RequestTooLarge(f"the body is larger than {limit} bytes"))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            text = value.decode("latin-1")
            # ASCII digits only (str.isdigit also takes "²", which int() refuses).
            return int(text) if text.isascii() and text.isdigit() else None
    return None


async def _send(scope: Scope, send: Send, error: CommonsError) -> None:
    path = scope.get("path")
    if path is not None and is_console_page(path):
        await send_prerendered_page(scope, send, error.status, [("Connection", "close")])
        return
    body, headers = _problem(error, path)
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def bounded_protocol_factory(max_header_bytes: int, max_line_bytes: int) -> Callable[..., Any]:
    """:func:`bounded_httptools_protocol` as uvicorn's ``http`` option for worker processes:
    a picklable callable (a ``partial`` of a module function), since uvicorn sends its
    configuration to each spawned worker and a class made in a function cannot be pickled.
    Each worker makes the class once and a protocol per connection from it."""
    return partial(_bounded_protocol, max_header_bytes, max_line_bytes)


def _bounded_protocol(max_header_bytes: int, max_line_bytes: int, *args: Any, **kwargs: Any) -> Any:
    return bounded_httptools_protocol(max_header_bytes, max_line_bytes)(*args, **kwargs)


@cache
def bounded_httptools_protocol(max_header_bytes: int, max_line_bytes: int) -> type[Any]:
    """uvicorn's httptools protocol, refusing (431 problem+json, connection closed) a request
    whose header section (request line included) passes ``max_header_bytes``, or whose
    target or any header line passes ``max_line_bytes``.

    httptools gathers a header's name and value before it calls back, so the section is
    bounded where the bytes arrive: while a request's headers are incomplete, the parser is
    fed no more than the budget left, and a section still incomplete at the budget's end is
    refused.  The line bound is checked as each line is handed over.

    It relies on uvicorn's parser callbacks (``on_message_begin``, ``on_url``, ``on_header``,
    ``on_headers_complete``) and on its refusal path (a callback's exception makes
    ``data_received`` call ``send_400_response``), which the pinned uvicorn has; the serve
    test holds them together.
    """

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        _in_headers = True
        _header_bytes = 0
        _url_bytes = 0
        _too_large = False
        _path = b""  # the target's first bytes, to tell a console page
        _accept_language: str | None = None

        def data_received(self, data: bytes) -> None:
            if self._too_large:
                return
            if not self._in_headers:
                super().data_received(data)
                return
            budget = max_header_bytes - self._header_bytes
            head, rest = data[:budget], data[budget:]
            self._header_bytes += len(head)
            super().data_received(head)
            if self._too_large:
                return
            if rest and self._in_headers:
                self._refuse()
            elif rest:
                super().data_received(rest)

        def on_message_begin(self) -> None:
            self._in_headers = True
            self._header_bytes = self._url_bytes = 0
            self._path, self._accept_language = b"", None
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._url_bytes += len(url)  # the target may arrive in pieces
            if len(self._path) < _PATH_KEPT:
                self._path = (self._path + url)[:_PATH_KEPT]
            if self._url_bytes > max_line_bytes:
                self._too_large = True
                raise _HeaderOverflow
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            if len(name) + len(value) + 4 > max_line_bytes:
                self._too_large = True
                raise _HeaderOverflow
            if name.lower() == b"accept-language":
                self._accept_language = value.decode("latin-1")
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_headers = False
            super().on_headers_complete()

        def send_400_response(self, msg: str) -> None:
            if self._too_large:
                self._refuse()
            else:
                super().send_400_response(msg)

        def _refuse(self) -> None:
            self._too_large = True
            self.transport.write(_refusal(self._path, self._accept_language))
            self.transport.close()

    return BoundedHttpToolsProtocol


def _refusal(target: bytes, accept_language: str | None) -> bytes:
    # The parser's 431, whole: the console's page for a console page, else problem+json.
    error = HeadersTooLarge("the request header section is too large")
    path = target.split(b"?", 1)[0].decode("latin-1")
    if is_console_page(path):
        body, headers = prerendered_page(None, accept_language, error.status)
        headers.append((b"connection", b"close"))
    else:
        body, headers = _problem(error, None)
    head = b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return head + b"\r\n" + body


_PATH_KEPT = 256  # enough for a page's first segment; the rest does not change its group


class _HeaderOverflow(Exception):
    """Stops the parser: a line of the header section is too long."""
