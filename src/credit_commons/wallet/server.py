"""The wallet's local HTTP server (``commons wallet serve``, docs/wallet.md "The local
server"): seed 004's light-node API for apps on the holder's own device.

It listens on a loopback address only (:func:`require_loopback`) and every request passes,
in order, before a route sees it (:class:`_Guard`, a pure ASGI middleware):

1. the ``Host`` header names a loopback host (127.0.0.1, localhost, [::1]) — a web page
   that rebinds its own DNS name to 127.0.0.1 sends its own name and is refused (403);
2. a browser's ``Origin`` header is refused unless the holder allowed that origin (403);
3. the bearer token drawn at start (``Authorization: Bearer …``), compared in constant
   time (401) — other users and processes of the device cannot use the unlocked wallet;
4. the rate limit: at most ``rate`` requests in any ``window`` seconds (429, Retry-After),
   counted in two buckets: one for requests with the token, one for requests without it
   (or with a wrong one). Tokenless requests — which any local process, or any web page
   through ``<img src=http://127.0.0.1:PORT/…>`` without an Origin, can send — fill only
   their own bucket, so they can never lock the holder out; past it they are answered 429
   instead of 401. (The token is 256 random bits: the guess bucket bounds noise, not a
   search.)
5. a body of at most ``max_body`` bytes (413).

Errors are problem+json (RFC 9457); each request is logged (method, path, status,
milliseconds) without its query, body or headers.

Routes: ``POST /v1/threshold-proof`` (``{ctx, threshold, nonce[, audience]}`` →
``{proof, checkpoint, presentation, request}``, :mod:`wallet.threshold`) and ``GET
/v1/scores?did=&ctx=`` (the platform's score bundle of the holder, as its subject sees it).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import (
    CommonsError,
    ConfigurationError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)
from credit_commons.wallet.threshold import ThresholdRequest, parse_threshold_request

__all__ = [
    "LOOPBACK_HOSTS",
    "Prover",
    "WalletServerConfig",
    "create_wallet_app",
    "require_loopback",
]

log = logging.getLogger("credit_commons.wallet.server")

PROBLEM_JSON: Final = "application/problem+json"
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
"""The host names a request's ``Host`` header may carry (any port)."""


def require_loopback(host: str) -> str:
    """``host`` if it is a loopback address or ``localhost``; raises
    :class:`ConfigurationError` for any other (the wallet server never listens beyond the
    device: ``0.0.0.0`` and ``::`` are every interface)."""
    name = host.strip("[]")
    if name == "localhost":
        return host
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigurationError(
            f"the wallet server listens on a loopback address only, not {host}",
            hint="use --host 127.0.0.1 (or ::1)",
        )
    return host


class Prover(Protocol):
    """What the server answers with (``wallet.threshold.ThresholdProver``)."""

    def prove(self, request: ThresholdRequest) -> JsonObject:
        """The answer to a threshold-proof request."""
        ...

    def scores(self, did: str, ctx: str) -> bytes:
        """The holder's score bundle in a context."""
        ...


class RequestTooLarge(ValidationError):
    """A body over the server's limit."""

    code = "request.too_large"
    title = "Request too large"
    status = 413


class RateLimited(UnavailableError):
    """Too many requests in the window."""

    code = "request.rate_limited"
    title = "Too many requests"
    status = 429


class UnsupportedMediaType(ValidationError):
    """A body that is not ``application/json``."""

    code = "request.unsupported_media_type"
    title = "Unsupported media type"
    status = 415


class NoSuchRoute(NotFoundError):
    """A path the server does not serve."""

    code = "request.not_found"


class MethodNotAllowed(ValidationError):
    """A method the path does not take."""

    code = "request.method_not_allowed"
    title = "Method not allowed"
    status = 405


class HostNotAllowed(ForbiddenError):
    """A ``Host`` that is not a loopback name, or a browser ``Origin`` not allowed."""

    code = "wallet.host_not_allowed"


@dataclass(frozen=True, slots=True)
class WalletServerConfig:
    """The server's settings: the bearer ``token``, the browser origins allowed (none by
    default), the body limit, and the rate limit (``rate`` requests a ``window``)."""

    token: str = field(repr=False)
    allowed_origins: frozenset[str] = frozenset()
    max_body: int = 16 * 1024
    rate: int = 60
    window: float = 60.0

    def __post_init__(self) -> None:
        if len(self.token) < 32:
            raise ConfigurationError("the wallet server's token is too short")


class _Window:
    # A moving window of request times (oldest first), never longer than its limit.
    def __init__(self, rate: int, window: float, now: Callable[[], float]) -> None:
        self._rate, self._window, self._now = rate, window, now
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def hit(self) -> int | None:
        """Count a request; None when allowed, else the seconds until one is."""
        with self._lock:
            now = self._now()
            while self._times and self._times[0] <= now - self._window:
                self._times.popleft()
            if len(self._times) >= self._rate:
                return max(1, int(self._times[0] + self._window - now) + 1)
            self._times.append(now)
            return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _host_name(host: str) -> str:
    # "127.0.0.1:8700" -> "127.0.0.1"; "[::1]:8700" -> "[::1]"; "localhost" -> "localhost".
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _problem(error: CommonsError, path: str) -> Response:
    headers = {}
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    if isinstance(error, UnauthorizedError):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(
        error.problem(instance=path),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


class _Guard:
    """Steps 1-5 of the module, and the request log."""

    def __init__(self, app: ASGIApp, config: WalletServerConfig, now: Callable[[], float]) -> None:
        self.app, self.config = app, config
        self._token = config.token.encode()
        self._window = _Window(config.rate, config.window, now)
        self._guesses = _Window(config.rate, config.window, now)

    def _check(self, scope: Scope) -> None:
        host = _header(scope, b"host")
        if host is None or _host_name(host.lower()) not in LOOPBACK_HOSTS:
            raise HostNotAllowed("this server answers requests to a loopback host only")
        origin = _header(scope, b"origin")
        if origin is not None and origin not in self.config.allowed_origins:
            raise HostNotAllowed("this origin may not use the wallet")
        scheme, _, token = (_header(scope, b"authorization") or "").partition(" ")
        authenticated = scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self._token
        )
        # Each kind of request is counted in its own bucket: a flood without the token
        # never throttles the holder's requests.
        wait = (self._window if authenticated else self._guesses).hit()
        if wait is not None:
            limited = RateLimited(
                f"more than {self.config.rate} requests in {self.config.window:g} seconds"
            )
            limited.retry_after = wait
            raise limited
        if not authenticated:
            raise UnauthorizedError("the wallet server's bearer token is required")
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.config.max_body):
            raise RequestTooLarge(f"the body is limited to {self.config.max_body} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            try:
                self._check(scope)
            except CommonsError as e:
                await _problem(e, scope["path"])(scope, receive, logged)
                return
            await self.app(scope, self._limited(receive), logged)
        finally:
            millis = (time.perf_counter() - started) * 1000
            log.info("%s %s %d %.1fms", scope["method"], scope["path"], status, millis)

    def _limited(self, receive: Receive) -> Receive:
        # A body streamed without Content-Length is cut at the limit too.
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.config.max_body:
                    raise RequestTooLarge(f"the body is limited to {self.config.max_body} bytes")
            return message

        return limited


async def _json_body(request: Request) -> object:
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType("the body is application/json")
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as e:
        raise ValidationError("the body is not JSON") from e


def create_wallet_app(
    prover: Prover,
    config: WalletServerConfig,
    *,
    now: Callable[[], float] = time.monotonic,
) -> ASGIApp:
    """The wallet server's ASGI app over ``prover`` (the unlocked wallet and its platform)."""

    async def threshold_proof(request: Request) -> Response:
        asked = parse_threshold_request(await _json_body(request))
        answer = await run_in_threadpool(prover.prove, asked)
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    async def scores(request: Request) -> Response:
        did, ctx = request.query_params.get("did"), request.query_params.get("ctx")
        if not did or not ctx:
            raise ValidationError("did and ctx are required")
        body = await run_in_threadpool(prover.scores, did, ctx)
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})

    async def commons_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CommonsError)
        return _problem(exc, request.url.path)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error: CommonsError = (
            NoSuchRoute("no such route")
            if exc.status_code == 404
            else MethodNotAllowed("this route does not take that method")
            if exc.status_code == 405
            else ValidationError(str(exc.detail))
        )
        return _problem(error, request.url.path)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected %s on %s", type(exc).__name__, request.url.path)
        return _problem(CommonsError("the wallet server failed"), request.url.path)

    routes: Iterable[Route] = (
        Route("/v1/threshold-proof", threshold_proof, methods=["POST"]),
        Route("/v1/scores", scores, methods=["GET"]),
    )
    app = Starlette(
        routes=list(routes),
        exception_handlers={
            CommonsError: commons_error,
            HTTPException: http_error,
            Exception: unexpected,
        },
    )
    return _Guard(app, config, now)
