"""Admission: how many requests of each route class a process runs at once, and what
happens to the others (they wait their turn, briefly, or are told to come back).

Why this exists.  A request's unit of work holds its database connection — and on SQLite
the one write lock — from its first statement to its commit, and in between it hops
between worker threads (dependencies, handler, response serialisation) that come from one
shared pool of threads.  Without a bound, a burst of requests fills that thread pool with
requests waiting for a connection or for the write lock, while the requests that hold
them wait for a thread to finish on: the process stalls until the pool and lock timeouts
fire, and those surface as errors (issue 13 item 1).

So every request is admitted before it is routed, before its body is read, any dependency
runs or any connection is taken, by the limiter of its route class (``route_groups.py``):

* ``write`` routes — anything that may write: on SQLite one writer works at a time, so
  a few are admitted (the others' CPU work overlaps the writer's); on PostgreSQL half the
  connection pool.
* ``read`` routes — the log, tiles, status lists, keys, health: their own limiter, so a
  burst of writes never starves them.

A request beyond a class's capacity waits in that class's queue, in order, on the event
loop (no thread, no connection), for at most ``COMMONS_ADMISSION_WAIT`` seconds; when the
queue is full (``COMMONS_ADMISSION_QUEUE``) or the wait runs out it is answered 503
``service.overloaded`` with ``Retry-After`` (a console page: the console's HTML page of
503, rendered at start-up, with the same ``Retry-After``).  The process's thread pool is
sized above the sum of the capacities (:meth:`Admission.reserve_threads`), and every
request that runs code in it has been admitted, so an admitted request never waits for a
thread: a request that holds a connection always gets the thread it needs to finish and
give it back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import partial

import anyio
from anyio import to_thread
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from credit_commons.core.errors import UnavailableError
from credit_commons.core.settings import Settings
from credit_commons.gateway.problems import send_problem
from credit_commons.gateway.route_groups import (
    CLASS_OF_GROUP,
    GROUP_KEY,
    READ,
    STREAM,
    WRITE,
    classify,
    is_console_page,
)
from credit_commons.web.errors import send_prerendered_page

__all__ = [
    "THREAD_HEADROOM",
    "Admission",
    "AdmissionMiddleware",
    "ClassLimiter",
    "Overloaded",
    "capacities",
]

THREAD_HEADROOM = 8
"""Worker threads kept beyond the admitted requests' (nothing admitted needs them; they
are a margin for code that hops to a thread outside a request)."""


class Overloaded(UnavailableError):
    """The request's route class is at capacity and its queue is full, or the request
    waited its longest for a turn: nothing of it ran.  Answered 503 with ``Retry-After``."""

    code = "service.overloaded"
    title = "Service overloaded"
    retry_after = 1

    def __init__(self, route_class: str, reason: str) -> None:
        super().__init__("the service is at capacity; retry shortly")
        self.route_class = route_class
        self.reason = reason


def capacities(settings: Settings, dialect: str) -> dict[str, int]:
    """How many requests of each route class one process runs at once.

    SQLite takes one writer at a time (``core/db.py`` queues a process's writers on a
    mutex before ``BEGIN IMMEDIATE``): four admitted writers keep it busy while their
    parsing and serialisation overlap.  On PostgreSQL the two classes share the pool:
    half of ``COMMONS_DB_POOL_SIZE`` each, so the pool's overflow is left for the log
    worker and for a request that opens a second unit of work.
    """
    if dialect == "sqlite":
        writers, readers = 4, 8
    else:
        writers = readers = max(1, settings.db_pool_size // 2)
    return {
        WRITE: settings.admission_writers or writers,
        READ: settings.admission_readers or readers,
    }


@dataclass
class _Metrics:
    in_flight: Gauge
    waiting: Gauge
    shed: Counter


class ClassLimiter:
    """At most ``capacity`` admitted at once, at most ``queue`` waiting in order, each for
    at most ``wait`` seconds.  Lives on one event loop: no lock is needed, since nothing
    here awaits between a check and the change it guards."""

    def __init__(self, name: str, capacity: int, queue: int, wait: float) -> None:
        if capacity < 1 or queue < 0 or wait <= 0:
            raise ValueError("capacity ≥ 1, queue ≥ 0 and wait > 0")
        self.name, self.capacity, self.queue, self.wait = name, capacity, queue, wait
        self.in_flight = 0
        self._waiters: deque[anyio.Event] = deque()

    @property
    def waiting(self) -> int:
        """Requests waiting for a turn now."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Take a turn, waiting for one if need be.

        Raises :class:`Overloaded` (``queue_full`` or ``timeout``).  A cancelled wait
        gives back a turn it was handed meanwhile.
        """
        if self.in_flight < self.capacity and not self._waiters:
            self.in_flight += 1
            return
        if len(self._waiters) >= self.queue:
            raise Overloaded(self.name, "queue_full")
        turn = anyio.Event()
        self._waiters.append(turn)
        try:
            with anyio.move_on_after(self.wait):
                await turn.wait()
        except BaseException:
            self._give_up(turn)
            raise
        if not turn.is_set():
            self._give_up(turn)
            raise Overloaded(self.name, "timeout")
        # release() handed this request its turn: in_flight already counts it.

    def _give_up(self, turn: anyio.Event) -> None:
        if turn.is_set():  # the turn arrived as the wait ended: pass it on
            self.release()
        else:
            self._waiters.remove(turn)

    def release(self) -> None:
        """End a turn: hand it to the first waiter, or free it."""
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self.in_flight -= 1


def _in_flight(limiter: ClassLimiter) -> float:
    return limiter.in_flight


def _waiting(limiter: ClassLimiter) -> float:
    return limiter.waiting


class Admission:
    """The limiters of one app, one per route class, with their metrics."""

    def __init__(self, settings: Settings, dialect: str, registry: CollectorRegistry) -> None:
        self.streams = settings.subscribe_streams
        self.limiters = {
            name: ClassLimiter(name, capacity, settings.admission_queue, settings.admission_wait)
            for name, capacity in capacities(settings, dialect).items()
        }
        self.metrics = _Metrics(
            in_flight=Gauge(
                "commons_admission_in_flight",
                "Requests admitted and running, by route class.",
                ["route_class"],
                registry=registry,
            ),
            waiting=Gauge(
                "commons_admission_waiting",
                "Requests waiting for their turn, by route class.",
                ["route_class"],
                registry=registry,
            ),
            shed=Counter(
                "commons_admission_shed_total",
                "Requests answered 503 service.overloaded, by route class and reason.",
                ["route_class", "reason"],
                registry=registry,
            ),
        )
        for name, limiter in self.limiters.items():
            self.metrics.in_flight.labels(name).set_function(partial(_in_flight, limiter))
            self.metrics.waiting.labels(name).set_function(partial(_waiting, limiter))

    @property
    def total(self) -> int:
        """The requests all classes admit at once, and the open streams (each polls on a
        worker thread)."""
        return sum(limiter.capacity for limiter in self.limiters.values()) + self.streams

    def reserve_threads(self) -> None:
        """Size the event loop's default thread pool (AnyIO's, which FastAPI runs sync
        handlers, dependencies and serialisation on) above every admitted request's need,
        so that an admitted request never waits for a thread.  Call inside the loop."""
        limiter = to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, self.total + THREAD_HEADROOM)


class AdmissionMiddleware:
    """Admits each HTTP request by its route class before routing (pure ASGI); a refused
    one is answered here, 503 problem+json with ``Retry-After``, as nothing of the app has
    run for it."""

    def __init__(self, app: ASGIApp, admission: Admission) -> None:
        self.app = app
        self.admission = admission
        self._threads_reserved = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._threads_reserved:  # the thread pool belongs to the running loop
            self.admission.reserve_threads()
            self._threads_reserved = True
        group = scope.get("state", {}).get(GROUP_KEY) or classify(
            scope.get("method", ""), scope.get("path", "")
        )
        route_class = CLASS_OF_GROUP[group]
        if route_class == STREAM:  # admitted by its stream slots, not held as a turn
            await self.app(scope, receive, send)
            return
        limiter = self.admission.limiters[route_class]
        try:
            await limiter.acquire()
        except Overloaded as refused:
            self.admission.metrics.shed.labels(refused.route_class, refused.reason).inc()
            retry = [("Retry-After", str(refused.retry_after))]
            if is_console_page(scope.get("path", "")):  # its HTML page, rendered at start-up
                await send_prerendered_page(scope, send, refused.status, retry)
            else:
                await send_problem(scope, send, refused, retry)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            limiter.release()
