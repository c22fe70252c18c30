"""Rate limits on every route, per client address and per credential, through ``limits``.

Counters live in process memory by default and in Redis when ``COMMONS_REDIS_URL`` is set,
so that several replicas share them.  :class:`RateLimitMiddleware` counts every request
before it is routed — before any dependency runs or any database connection is taken —
against the limits of its route group (``route_groups.py``):

1. per client address (decided by :mod:`~credit_commons.gateway.client_address`; an IPv6
   address counts by its /64), in every group;
2. per credential, when the request carries an ``Authorization`` header and its group
   authenticates callers: the header's SHA-256 is the key, so nothing is looked up.  A
   request refused at step 1 is not counted here, so a flood of made-up tokens from one
   address creates no counters beyond that address's budget.

The lender routes count once more after authentication, per verified client id
(:func:`~credit_commons.gateway.lender_deps.authenticate_request` and the token endpoint),
because a lender can mint several access tokens.

Every response of a counted request carries the RateLimit fields of
draft-ietf-httpapi-ratelimit-headers-11 (the latest draft whose text was read; §3
``RateLimit-Policy``, §4 ``RateLimit``: one item per policy counted, named
``"<group>.<ip|credential|client>.<window>s"``) and the older ``X-RateLimit-Limit``/
``-Remaining``/``-Reset`` of seed 003 §16.1 for the tightest one.  A refused request is
answered 429 problem+json (``request.rate_limited``) with ``Retry-After`` and, as §5.1 of
the draft suggests, the ``violated-policies`` it exceeded.  When Redis is configured but
cannot be reached the limiter fails closed: 503 ``service.rate_limit_unavailable``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from anyio import CapacityLimiter, to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimiter
from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from credit_commons.core.attached import Attached
from credit_commons.core.errors import CommonsError, ConfigurationError, UnavailableError
from credit_commons.core.settings import Settings
from credit_commons.gateway.client_address import ClientAddressResolver, rate_limit_key
from credit_commons.gateway.problems import problem_response, send_problem
from credit_commons.gateway.ratelimit_memory import ProcessMemoryStorage
from credit_commons.gateway.route_groups import (
    GROUP_KEY,
    GROUPS,
    WEB_GROUPS,
    classify,
    is_console_page,
)
from credit_commons.runtime import Runtime
from credit_commons.web.errors import send_error_page

if TYPE_CHECKING:
    from redis import ConnectionPool

__all__ = [
    "LIMITERS",
    "RateLimitMiddleware",
    "RateLimitState",
    "RateLimitUnavailable",
    "RateLimited",
    "RateLimits",
    "client_address",
    "close_rate_limits",
    "count_act",
    "install_rate_limit_handler",
    "rate_limits",
    "remember",
]

_STATE_KEY = "rate_limits"
_ADDRESS_KEY = "client_address"
_REDIS_TIMEOUT = 2.0
_REDIS_THREADS = 16
# The lender groups' scopes as the lender code names them.
_SCOPES = {"api": "lender-api", "token": "lender-token"}


@dataclass(frozen=True)
class RateLimitState:
    """Where a caller stands against one limit after a request was counted."""

    limit: int
    remaining: int
    reset_after: int
    policy: str = field(default="", compare=False)
    window: int = field(default=0, compare=False)

    def headers(self) -> dict[str, str]:
        """The ``X-RateLimit-*`` headers (seed 003 §16.1); ``Reset`` is in seconds."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_after),
        }


def _sf_string(text: str) -> str:
    # RFC 9651 §3.3.3: a String is printable ASCII between quotes, with \ and " escaped.
    # Policy names are built from group and kind names, so this never needs more.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def limit_headers(states: Sequence[RateLimitState]) -> list[tuple[str, str]]:
    """The response fields for the limits a request was counted against: ``RateLimit-Policy``
    and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers-11 §3.1, §4.1: a List of Items,
    a String naming each policy, with the Integer parameters ``q``/``w`` and ``r``/``t``),
    and ``X-RateLimit-*`` for the tightest.  Empty when nothing was counted."""
    if not states:
        return []
    tightest = min(states, key=lambda s: s.remaining)
    policy = ", ".join(f"{_sf_string(s.policy)};q={s.limit};w={s.window}" for s in states)
    current = ", ".join(f"{_sf_string(s.policy)};r={s.remaining};t={s.reset_after}" for s in states)
    return [("RateLimit-Policy", policy), ("RateLimit", current), *tightest.headers().items()]


class RateLimited(CommonsError):
    """Too many requests: answered 429 with ``Retry-After`` and the limit fields."""

    code = "request.rate_limited"
    title = "Too many requests"
    status = 429

    def __init__(self, state: RateLimitState) -> None:
        super().__init__(
            "too many requests; retry later", extra={"violated-policies": [state.policy]}
        )
        self.state = state
        self.counted: list[RateLimitState] = []

    def headers(self) -> list[tuple[str, str]]:
        """``Retry-After`` (RFC 9110 §10.2.3, at least one second) and the limit fields;
        the refused policy is the tightest, so ``X-RateLimit-*`` describe it."""
        retry = ("Retry-After", str(max(1, self.state.reset_after)))
        return [retry, *limit_headers([*self.counted, self.state])]


class RateLimitUnavailable(UnavailableError):
    """The shared rate-limit store (Redis) cannot be reached; requests fail closed."""

    code = "service.rate_limit_unavailable"
    title = "Service unavailable"


@dataclass(frozen=True)
class _Policy:
    name: str
    item: RateLimitItem


class RateLimits:
    """The limiter of one process: a ``limits`` strategy over memory or Redis storage, with
    the limits of every route group.

    ``limits`` maps ``"<group>.<ip|client>"`` to a limit in the ``limits`` notation
    (``"10/minute;100/hour"``), overriding the groups' defaults; ``ip_limit`` and
    ``client_limit`` are the lender groups' (``COMMONS_RATE_LIMIT_IP``/``_CLIENT``).
    ``now`` is the time of the in-memory windows and of the seconds until a window resets
    (Redis keeps its own).

    Raises :class:`ConfigurationError` for an unknown group or a malformed limit.
    """

    def __init__(
        self,
        *,
        client_limit: str = "600/minute",
        ip_limit: str = "1200/minute",
        limits: Mapping[str, str] | None = None,
        redis_url: str | None = None,
        strategy: str = "moving-window",
        key_prefix: str = "commons",
        now: Callable[[], float] = time.time,
    ) -> None:
        self._now = now
        self._policies: dict[tuple[str, str], tuple[_Policy, ...]] = {}
        known = {group.name for group in GROUPS}
        for key in limits or {}:
            if key.rsplit(".", 1)[0] not in known:
                raise ConfigurationError(
                    f"COMMONS_RATE_LIMITS names an unknown route group: {key}",
                    hint="the groups are listed in docs/limits.md",
                )
        for group in GROUPS:
            lender = group.name in _SCOPES.values()
            for kind, default in (("ip", group.ip), ("client", group.client)):
                fallback = (ip_limit if kind == "ip" else client_limit) if lender else default
                notation = (limits or {}).get(f"{group.name}.{kind}", fallback)
                if notation:
                    self._policies[(group.name, kind)] = self._parse(group.name, kind, notation)
        self._pool: ConnectionPool | None = None
        storage: Storage
        if redis_url:
            # Imported here: redis is about 0.3 s of CPU to import, and only a platform
            # configured with Redis needs it (every `commons serve` start paid for it).
            from redis import ConnectionPool  # noqa: PLC0415  # deferred: redis, only when configured

            # Short timeouts: a Redis that hangs must not hang every request.
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
            # Not limits' MemoryStorage, which starts a timer thread per request (see
            # ratelimit_memory.py); windows in memory follow ``now``.
            storage = ProcessMemoryStorage(now=now, wrap_exceptions=True)
        self.backend = "redis" if redis_url else "memory"
        self._limiter: RateLimiter = (
            FixedWindowRateLimiter(storage)
            if strategy == "fixed-window"
            else MovingWindowRateLimiter(storage)
        )

    @staticmethod
    def _parse(group: str, kind: str, notation: str) -> tuple[_Policy, ...]:
        try:
            items = parse_many(notation)
        except ValueError as e:
            raise ConfigurationError(
                f"rate limit of {group}.{kind} is malformed: {notation}"
            ) from e
        return tuple(_Policy(f"{group}.{kind}", item) for item in items)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        """The limiter ``COMMONS_RATE_LIMIT*`` and ``COMMONS_REDIS_URL`` describe."""
        return cls(
            client_limit=settings.rate_limit_client,
            ip_limit=settings.rate_limit_ip,
            limits=settings.rate_limits,
            redis_url=settings.redis_url.get_secret_value() if settings.redis_url else None,
            strategy=settings.rate_limit_strategy,
        )

    def counts(self, group: str, kind: str) -> bool:
        """Whether ``group`` has a limit of ``kind`` (``ip`` or ``client``)."""
        return (group, kind) in self._policies

    def hit(
        self, group: str, kind: str, key: str, *, label: str | None = None
    ) -> list[RateLimitState]:
        """Count one request of ``key`` against ``group``'s limits of ``kind``; the state of
        each of its windows.  ``label`` names the policy in the response fields (default
        ``kind``).

        Raises :class:`RateLimited` (carrying the windows counted before the one refused)
        or :class:`RateLimitUnavailable`.
        """
        policies = self._policies.get((group, kind), ())
        states: list[RateLimitState] = []
        try:
            for policy in policies:
                item = policy.item
                allowed = self._limiter.hit(item, group, kind, key)
                stats = self._limiter.get_window_stats(item, group, kind, key)
                window = item.get_expiry()
                state = RateLimitState(
                    limit=item.amount,
                    remaining=max(0, stats.remaining),
                    reset_after=max(0, math.ceil(stats.reset_time - self._now())),
                    policy=f"{group}.{label or kind}.{window}s",
                    window=window,
                )
                if not allowed:
                    refused = RateLimited(state)
                    refused.counted = states
                    raise refused
                states.append(state)
        except StorageError as e:
            raise RateLimitUnavailable(
                "the rate-limit store is not reachable",
                hint="check COMMONS_REDIS_URL and that Redis is up (requests fail closed)",
            ) from e
        return states

    def _tightest(self, group: str, kind: str, key: str, label: str) -> RateLimitState:
        states = self.hit(group, kind, key, label=label)
        return min(states, key=lambda s: s.remaining)

    def hit_client(self, scope: str, client_id: str) -> RateLimitState:
        """Count one request of the verified lender client ``client_id`` in ``scope``
        (``token`` or ``api``); the tightest window.

        Raises :class:`RateLimited` or :class:`RateLimitUnavailable`.
        """
        return self._tightest(_SCOPES[scope], "client", f"id:{client_id}", "client")

    def hit_ip(self, scope: str, address: str) -> RateLimitState:
        """Count one request from ``address`` in ``scope``; raises like :meth:`hit_client`."""
        return self._tightest(_SCOPES[scope], "ip", address, "ip")

    def close(self) -> None:
        """Release the Redis connections, if any."""
        if self._pool is not None:
            self._pool.disconnect()


LIMITERS = Attached[Runtime, RateLimits](lambda rt: RateLimits.from_settings(rt.settings))
"""Each runtime's limiter (a test installs its own with ``LIMITERS.set``)."""


def rate_limits(rt: Runtime) -> RateLimits:
    """The runtime's limiter, built from its settings on first use.

    Raises :class:`ConfigurationError` when ``COMMONS_RATE_LIMITS`` is not acceptable.
    """
    # Made once: two first requests must not each count in a limiter of their own.
    return LIMITERS(rt)


def close_rate_limits(rt: Runtime) -> None:
    """Close the runtime's limiter if one was built."""
    limiter = LIMITERS.pop(rt)
    if limiter is not None:
        limiter.close()


def client_address(request: Request) -> str:
    """The caller's address as :class:`RateLimitMiddleware` decided it (the peer, or what a
    trusted proxy's forwarding header says); the peer itself where no middleware ran."""
    decided = request.scope.get("state", {}).get(_ADDRESS_KEY)
    if isinstance(decided, str):
        return decided
    return request.client.host if request.client else "unknown"


def remember(request: Request, state: RateLimitState) -> None:
    """Add ``state`` to the limits the response reports (the lender code's per-client
    counts, made after authentication)."""
    counted = request.scope.setdefault("state", {}).setdefault(_STATE_KEY, [])
    counted.append(state)


def count_act(request: Request, group: str, who: str) -> None:
    """Count one console act of ``who`` against ``group``'s per-credential limit
    (web/limits.py): a lender's client id in ``lender-api`` with the key the API counts it
    by (:meth:`RateLimits.hit_client`, one budget for both), an identity token elsewhere by
    its digest (the token itself is never a key).  The states join the response's fields.

    Raises :class:`RateLimited` or :class:`RateLimitUnavailable`.
    """
    limiter = rate_limits(request.app.state.runtime)
    if group == _SCOPES["api"]:
        remember(request, limiter.hit_client("api", who))
        return
    key = "identity:" + hashlib.sha256(who.encode()).hexdigest()[:32]
    for state in limiter.hit(group, "client", key, label="identity"):
        remember(request, state)


def count_refusal(counter: Counter | None, refused: RateLimited) -> None:
    """Count a 429 in ``counter`` (``commons_rate_limited_total``) by the refused policy's
    route group and counted key (its name is ``<group>.<key>.<window>s``)."""
    if counter is not None:
        group, key, _window = refused.state.policy.rsplit(".", 2)
        counter.labels(group, key).inc()


def install_rate_limit_handler(app: FastAPI, refusals: Counter | None = None) -> None:
    """Answer :class:`RateLimited` raised inside a route (the per-client counts) as 429
    problem+json with its headers and the limits counted before (counted in
    ``refusals``)."""

    @app.exception_handler(RateLimited)
    async def _limited(request: Request, error: RateLimited) -> JSONResponse:
        count_refusal(refusals, error)
        error.counted = [*request.scope.get("state", {}).get(_STATE_KEY, []), *error.counted]
        # The middleware must not add the fields a second time.
        request.scope.setdefault("state", {})[_STATE_KEY] = []
        response = problem_response(error, request)
        for name, value in error.headers():
            response.headers.append(name, value)
        return response


def _credential_key(authorization: bytes) -> str:
    # The credential itself is never stored: its digest is the counter's key.
    return "cred:" + hashlib.sha256(authorization).hexdigest()[:32]


class RateLimitMiddleware:
    """Decides the client address, counts the request against its route group's limits,
    refuses it (429, or 503 when the store is down) or adds the limit fields to its
    response.  Pure ASGI: it runs before routing and never touches the database."""

    def __init__(self, app: ASGIApp, runtime: Runtime, refusals: Counter | None = None) -> None:
        self.app = app
        self.runtime = runtime
        self.refusals = refusals
        settings = runtime.settings
        self.resolver = ClientAddressResolver(settings.trusted_proxies, settings.forwarded_header)
        self._thread_limiter: CapacityLimiter | None = None

    async def _count(
        self, limiter: RateLimits, group: str, kind: str, key: str, label: str
    ) -> list[RateLimitState]:
        if limiter.backend == "memory":
            return limiter.hit(group, kind, key, label=label)
        # Redis answers over the network: off the event loop, on threads of the limiter's
        # own.  This runs before admission (admission.py), so it must not take the threads
        # reserved for admitted requests: a burst waiting on Redis would leave a request
        # that holds a database connection without a thread to finish on.
        return await to_thread.run_sync(
            lambda: limiter.hit(group, kind, key, label=label), limiter=self._threads()
        )

    def _threads(self) -> CapacityLimiter:
        # Made on first use, inside the app's event loop.
        if self._thread_limiter is None:
            self._thread_limiter = CapacityLimiter(_REDIS_THREADS)
        return self._thread_limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
        peer = scope.get("client")
        address = self.resolver.resolve(peer[0] if peer else None, headers)
        state: dict[str, Any] = scope.setdefault("state", {})
        state[_ADDRESS_KEY] = address
        group = classify(scope.get("method", ""), scope.get("path", ""))
        state[GROUP_KEY] = group  # admission (admission.py) counts the request in its class
        counted: list[RateLimitState] = []
        try:
            limiter = rate_limits(self.runtime)
            counted += await self._count(limiter, group, "ip", rate_limit_key(address), "ip")
            authorization = next((v for k, v in headers if k == b"authorization"), None)
            if authorization and limiter.counts(group, "client"):
                key = _credential_key(authorization)
                counted += await self._count(limiter, group, "client", key, "credential")
        except RateLimited as refused:
            count_refusal(self.refusals, refused)
            refused.counted = counted + refused.counted
            # A console page (its own groups, or an act it counts in the API's group): the
            # HTML page, with the same status and fields.
            if group in WEB_GROUPS or is_console_page(scope.get("path", "")):
                await send_error_page(scope, send, refused.status, refused.headers())
            else:
                await send_problem(scope, send, refused, refused.headers())
            return
        except CommonsError as error:  # the store is down, or the limits are misconfigured
            await send_problem(scope, send, error, [])
            return
        state[_STATE_KEY] = counted

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                fields = limit_headers(state.get(_STATE_KEY, []))
                if fields:
                    message["headers"] = [
                        *message.get("headers", []),
                        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in fields),
                    ]
            await send(message)

        await self.app(scope, receive, send_with_limits)
