"""Rate limits per lender client and per IP address, through the ``limits`` library.

Counters live in process memory by default and in Redis when ``COMMONS_REDIS_URL`` is set,
so that several replicas share them.  Two counters guard each lender-facing request — one per
client IP address (``COMMONS_RATE_LIMIT_IP``), one per authenticated client id
(``COMMONS_RATE_LIMIT_CLIENT``) — in two namespaces, the token endpoint and the lender API,
so that fetching a token does not eat into the API budget.

A refused request is answered 429 problem+json (``request.rate_limited``) with
``Retry-After`` and the ``X-RateLimit-Limit``/``-Remaining``/``-Reset`` headers of seed 003
§16.1 (``Reset`` in seconds from now); a request let through carries the ``X-RateLimit-*``
headers too, added by :class:`RateLimitHeadersMiddleware`.  When Redis is configured but
cannot be reached the limiter fails closed: 503 ``service.rate_limit_unavailable``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimiter
from redis import ConnectionPool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from credit_commons.core.errors import CommonsError, UnavailableError
from credit_commons.core.settings import Settings
from credit_commons.gateway.problems import problem_response
from credit_commons.runtime import Runtime

__all__ = [
    "RateLimitHeadersMiddleware",
    "RateLimitState",
    "RateLimitUnavailable",
    "RateLimited",
    "RateLimits",
    "client_address",
    "close_rate_limits",
    "install_rate_limit_handler",
    "rate_limits",
    "remember",
]

_EXTRAS_KEY = "rate_limits"
_STATE_KEY = "rate_limit"
_REDIS_TIMEOUT = 2.0
_BUILD_LOCK = threading.Lock()


@dataclass(frozen=True)
class RateLimitState:
    """Where a caller stands against one limit after a request was counted."""

    limit: int
    remaining: int
    reset_after: int

    def headers(self) -> dict[str, str]:
        """The ``X-RateLimit-*`` headers (seed 003 §16.1); ``Reset`` is in seconds."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_after),
        }


class RateLimited(CommonsError):
    """Too many requests: answered 429 with ``Retry-After`` and ``X-RateLimit-*``."""

    code = "request.rate_limited"
    title = "Too many requests"
    status = 429

    def __init__(self, state: RateLimitState) -> None:
        super().__init__("too many requests; retry later")
        self.state = state

    def headers(self) -> dict[str, str]:
        """``Retry-After`` (RFC 9110 §10.2.3, at least one second) and the limit headers."""
        return {"Retry-After": str(max(1, self.state.reset_after)), **self.state.headers()}


class RateLimitUnavailable(UnavailableError):
    """The shared rate-limit store (Redis) cannot be reached; requests fail closed."""

    code = "service.rate_limit_unavailable"
    title = "Service unavailable"


class RateLimits:
    """The limiter of one process: a ``limits`` strategy over memory or Redis storage.

    ``now`` only computes the seconds until a window resets; ``limits`` keeps its own time.
    """

    def __init__(
        self,
        *,
        client_limit: str,
        ip_limit: str,
        redis_url: str | None = None,
        strategy: str = "moving-window",
        key_prefix: str = "commons",
        now: Callable[[], float] = time.time,
    ) -> None:
        self._client = parse_many(client_limit)
        self._ip = parse_many(ip_limit)
        self._now = now
        self._pool: ConnectionPool | None = None
        storage: Storage
        if redis_url:
            # Short timeouts: a Redis that hangs must not hang every lender request.
            self._pool = ConnectionPool.from_url(
                redis_url, socket_connect_timeout=_REDIS_TIMEOUT, socket_timeout=_REDIS_TIMEOUT
            )
            storage = RedisStorage(
                redis_url,
                connection_pool=self._pool,
                key_prefix=f"{key_prefix}:ratelimit",
                wrap_exceptions=True,
            )
        else:
            storage = MemoryStorage(wrap_exceptions=True)
        self.backend = "redis" if redis_url else "memory"
        self._limiter: RateLimiter = (
            FixedWindowRateLimiter(storage)
            if strategy == "fixed-window"
            else MovingWindowRateLimiter(storage)
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        """The limiter ``COMMONS_RATE_LIMIT_*`` and ``COMMONS_REDIS_URL`` describe."""
        return cls(
            client_limit=settings.rate_limit_client,
            ip_limit=settings.rate_limit_ip,
            redis_url=settings.redis_url.get_secret_value() if settings.redis_url else None,
            strategy=settings.rate_limit_strategy,
        )

    def hit_client(self, scope: str, client_id: str) -> RateLimitState:
        """Count one request of ``client_id`` in ``scope`` (``token`` or ``api``).

        Raises :class:`RateLimited` or :class:`RateLimitUnavailable`.
        """
        return self._hit(self._client, scope, "client", client_id)

    def hit_ip(self, scope: str, address: str) -> RateLimitState:
        """Count one request from ``address`` in ``scope``; raises like :meth:`hit_client`."""
        return self._hit(self._ip, scope, "ip", address)

    def _hit(self, items: Sequence[RateLimitItem], *key: str) -> RateLimitState:
        tightest: RateLimitState | None = None
        try:
            for item in items:
                allowed = self._limiter.hit(item, *key)
                stats = self._limiter.get_window_stats(item, *key)
                state = RateLimitState(
                    limit=item.amount,
                    remaining=max(0, stats.remaining),
                    reset_after=max(0, math.ceil(stats.reset_time - self._now())),
                )
                if not allowed:
                    raise RateLimited(state)
                if tightest is None or state.remaining < tightest.remaining:
                    tightest = state
        except StorageError as e:
            raise RateLimitUnavailable(
                "the rate-limit store is not reachable",
                hint="check COMMONS_REDIS_URL and that Redis is up (requests fail closed)",
            ) from e
        assert tightest is not None  # parse_many never returns an empty list
        return tightest

    def close(self) -> None:
        """Release the Redis connections, if any."""
        if self._pool is not None:
            self._pool.disconnect()


def rate_limits(rt: Runtime) -> RateLimits:
    """The runtime's limiter, built from its settings on first use."""
    limiter = rt.extras.get(_EXTRAS_KEY)
    if isinstance(limiter, RateLimits):
        return limiter
    with _BUILD_LOCK:  # two first requests must not each count in a limiter of their own
        limiter = rt.extras.get(_EXTRAS_KEY)
        if not isinstance(limiter, RateLimits):
            limiter = RateLimits.from_settings(rt.settings)
            rt.extras[_EXTRAS_KEY] = limiter
        return limiter


def close_rate_limits(rt: Runtime) -> None:
    """Close the runtime's limiter if one was built."""
    limiter = rt.extras.pop(_EXTRAS_KEY, None)
    if isinstance(limiter, RateLimits):
        limiter.close()


def client_address(request: Request) -> str:
    """The caller's IP address as the server saw it (a proxy's ``X-Forwarded-For`` counts
    only where uvicorn is told to trust it: ``--forwarded-allow-ips``)."""
    return request.client.host if request.client else "unknown"


def remember(request: Request, state: RateLimitState) -> None:
    """Keep ``state`` for the response's ``X-RateLimit-*`` headers (the tighter one wins)."""
    previous = getattr(request.state, _STATE_KEY, None)
    if not isinstance(previous, RateLimitState) or state.remaining <= previous.remaining:
        setattr(request.state, _STATE_KEY, state)


def install_rate_limit_handler(app: FastAPI) -> None:
    """Answer :class:`RateLimited` as 429 problem+json with its headers."""

    @app.exception_handler(RateLimited)
    async def _limited(request: Request, error: RateLimited) -> JSONResponse:
        response = problem_response(error, request)
        response.headers.update(error.headers())
        return response


class RateLimitHeadersMiddleware:
    """Adds the ``X-RateLimit-*`` headers of a counted request to its response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state", {}).get(_STATE_KEY)
                headers = list(message.get("headers", []))
                if isinstance(state, RateLimitState) and not any(
                    name.lower() == b"x-ratelimit-limit" for name, _ in headers
                ):
                    headers.extend(
                        (k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in state.headers().items()
                    )
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_limits)
