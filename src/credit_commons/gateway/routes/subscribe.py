"""``GET /v1/subscribe?topic=``: the federation's signed messages as server-sent events, for
the platform's own services (docs/federation.md, "Subscribing over HTTP").

The order of the checks keeps a flood cheap: the topic's grammar (400), the presence of a
bearer token (401) and a stream slot — at most ``COMMONS_SUBSCRIBE_STREAMS`` open streams in
the process (503) and ``COMMONS_SUBSCRIBE_STREAMS_PER_CREDENTIAL`` per bearer token, counted
by its SHA-256 as the rate limiter does (429) — are decided before any database work; then
one read by primary key authenticates the token, which must be an administrator's (403).

A stream holds no database connection between polls: every ``COMMONS_SUBSCRIBE_POLL``
seconds it reads the messages of up to 256 leaves after its cursor
in a short read-only unit of work, on a worker thread, and queues them for the client in a
buffer of ``COMMONS_SUBSCRIBE_BUFFER`` messages.  A client that does not read fast enough
fills its buffer: it is then dropped (a final ``: dropped`` comment, then the connection is
closed), and nobody else waits for it.  A ``: ping`` comment goes out every 15 s of
silence; the streams end when the server shuts down (:meth:`StreamSlots.close`).
"""

from __future__ import annotations

import hashlib
import signal
import threading
from collections import Counter
from typing import Annotated

import anyio
from anyio import to_thread
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as PromCounter
from starlette.types import Receive, Scope, Send

from credit_commons.core.db import transaction
from credit_commons.core.errors import (
    CommonsError,
    ForbiddenError,
    UnauthorizedError,
    UnavailableError,
)
from credit_commons.federation import (
    Topic,
    TopicInvalid,
    feed_log_size,
    parse_topic,
    read_messages,
)
from credit_commons.gateway.openapi import media
from credit_commons.gateway.problems import PROBLEM_JSON
from credit_commons.identity import auth as identity_auth
from credit_commons.runtime import Runtime

__all__ = [
    "FAREWELL",
    "HEARTBEAT",
    "StreamSlots",
    "StreamsFull",
    "TooManyStreams",
    "end_streams_on_signals",
    "router",
]

router = APIRouter(prefix="/v1", tags=["federation"])

HEARTBEAT = 15.0
"""Seconds of silence after which a ``: ping`` comment is sent."""

FAREWELL = 5.0
"""Seconds a stream that ends waits for its client to take the last comment and the end."""

_EVENT_STREAM = "text/event-stream"
_MAX_TOPICS = 8
_BATCH = 256  # log leaves a stream reads per poll at most


class TooManyStreams(CommonsError):
    """This credential has its most streams open: answered 429 with ``Retry-After``."""

    code = "subscribe.too_many_streams"
    title = "Too many streams"
    status = 429


class LastEventIdInvalid(CommonsError):
    """A ``Last-Event-ID`` that is not a log index: answered 400."""

    code = "subscribe.last_event_id_invalid"
    title = "Invalid Last-Event-ID"
    status = 400


class StreamsFull(UnavailableError):
    """The process serves its most streams: answered 503 with ``Retry-After``."""

    code = "subscribe.streams_full"
    title = "Streams full"
    retry_after = 5


class StreamSlots:
    """The open streams of one app: at most ``total``, at most ``per_credential`` per
    credential key.  Lives on the event loop: nothing awaits between a check and its change."""

    def __init__(self, total: int, per_credential: int, registry: CollectorRegistry) -> None:
        self.total, self.per_credential = total, per_credential
        self.open: Counter[str] = Counter()
        self.closing = False
        Gauge(
            "commons_subscribe_streams", "Open GET /v1/subscribe streams.", registry=registry
        ).set_function(self._count)
        self.dropped = PromCounter(
            "commons_subscribe_dropped_total",
            "Subscribers dropped because they did not keep up with their stream.",
            registry=registry,
        )
        self.refused = PromCounter(
            "commons_subscribe_refused_total",
            "Streams refused because the process or the credential had its most open.",
            ["reason"],
            registry=registry,
        )

    def _count(self) -> float:
        return sum(self.open.values())

    def take(self, key: str) -> None:
        """Take a slot for ``key`` or raise :class:`StreamsFull` / :class:`TooManyStreams`."""
        if self.closing or sum(self.open.values()) >= self.total:
            self.refused.labels("process").inc()
            raise StreamsFull("the server serves its most streams; retry later")
        if self.open[key] >= self.per_credential:
            self.refused.labels("credential").inc()
            raise TooManyStreams("this credential has its most streams open")
        self.open[key] += 1

    def give_back(self, key: str) -> None:
        """Free a slot of ``key``."""
        self.open[key] -= 1
        if self.open[key] <= 0:
            del self.open[key]

    def close(self) -> None:
        """End every stream at its next wake-up and refuse new ones (server shutdown).
        Safe from a signal handler: it only sets a flag."""
        self.closing = True


def end_streams_on_signals(slots: StreamSlots) -> None:
    """Close ``slots`` on SIGTERM or SIGINT, then hand the signal to the handler installed
    before (uvicorn's, which starts the graceful shutdown).  Without this, uvicorn would wait
    for every open stream to end by itself: a stream is a response that never completes.
    Called from the app's start-up; does nothing off the main thread (a test client's app),
    where no signal reaches the app."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def handler(number: int, frame: object, previous: object = previous) -> None:
            slots.close()
            if callable(previous):
                previous(number, frame)

        signal.signal(signum, handler)


def _refusal(error: CommonsError, request: Request, retry_after: int) -> JSONResponse:
    return JSONResponse(
        error.problem(instance=request.url.path),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers={"Retry-After": str(retry_after)},
    )


def _start(rt: Runtime, authorization: str, last_event_id: str | None) -> int:
    """Authenticate (administrators only) and the leaf index the stream starts at."""
    with transaction(rt.read_sessions) as session:
        principal = identity_auth.authenticate(session, rt, authorization)
        if not principal.is_admin:
            raise ForbiddenError("subscribing to the event bus is for administrators")
        if last_event_id is not None:
            return _resume_index(last_event_id)
        return feed_log_size(session)


def _resume_index(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise LastEventIdInvalid("Last-Event-ID is a log index (a non-negative integer)")
    return int(text) + 1


class _Stream:
    """One subscriber's stream (a pure ASGI response)."""

    def __init__(
        self, rt: Runtime, slots: StreamSlots, key: str, topics: list[Topic], start: int
    ) -> None:
        self.rt, self.slots, self.key, self.topics, self.cursor = rt, slots, key, topics, start
        # At most one message per leaf and topic prefix, and at most two per leaf.
        self.per_leaf = min(2, len({t.prefix for t in topics}))
        settings = rt.settings
        self.poll, self.batch = settings.subscribe_poll, min(settings.subscribe_buffer, _BATCH)
        self.send_queue, self.receive_queue = anyio.create_memory_object_stream[bytes](
            settings.subscribe_buffer
        )
        self.stall = settings.subscribe_stall
        self.dropped = False
        self.caught_up = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-store"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b": open\n\n", "more_body": True})
            async with anyio.create_task_group() as group:
                group.start_soon(self._produce, group.cancel_scope)
                group.start_soon(self._consume, send)
                group.start_soon(self._disconnect, receive, group.cancel_scope)
            if self.dropped:
                self.slots.dropped.inc()
            # A client that does not read for FAREWELL more seconds gets neither the farewell
            # nor the end of the response, only the closed connection.
            with anyio.move_on_after(FAREWELL):
                if self.dropped:
                    body = b": dropped: the subscriber did not keep up\n\n"
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.slots.give_back(self.key)

    async def _disconnect(self, receive: Receive, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    async def _produce(self, scope: anyio.CancelScope) -> None:
        idle = 0.0
        while not self.slots.closing:
            if self._leaves() == 0 and not await self._wait_for_room():
                self.dropped = True  # its buffer stayed full: it does not keep up
                break
            if self.slots.closing:
                break
            # Reading at most room / per_leaf leaves never overfills the buffer.
            batch = await to_thread.run_sync(self._read, self._leaves())
            for chunk in batch:
                self.send_queue.send_nowait(chunk)
            if batch:
                idle = 0.0
            if self.caught_up:
                await anyio.sleep(self.poll)
                idle += self.poll
            if idle >= HEARTBEAT and self._room():
                idle = 0.0
                self.send_queue.send_nowait(b": ping\n\n")
        scope.cancel()

    async def _wait_for_room(self) -> bool:
        """Wait up to ``COMMONS_SUBSCRIBE_STALL`` seconds (checking each poll) for the
        client to take something from its full buffer; whether it did."""
        waited = 0.0
        while waited < self.stall and not self.slots.closing:
            await anyio.sleep(self.poll)
            waited += self.poll
            if self._leaves():
                return True
        return self.slots.closing

    def _leaves(self) -> int:
        """How many leaves may be read now without overfilling the buffer."""
        return min(self.batch, self._room() // self.per_leaf)

    def _room(self) -> int:
        stats = self.send_queue.statistics()
        return int(stats.max_buffer_size) - stats.current_buffer_used

    def _read(self, leaves: int) -> list[bytes]:
        with transaction(self.rt.read_sessions) as session:
            found = read_messages(session, self.rt, self.topics, self.cursor, leaves)
        self.caught_up = found.next_index - self.cursor < leaves
        self.cursor = found.next_index
        return [
            b"id: %d\nevent: %s\ndata: %s\n\n" % (m.position, m.subject.encode("ascii"), m.body)
            for m in found.messages
        ]

    async def _consume(self, send: Send) -> None:
        async for chunk in self.receive_queue:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})


class _StreamResponse(Response):
    """The stream as the handler's response (FastAPI passes a ``Response`` through)."""

    def __init__(self, stream: _Stream) -> None:
        super().__init__(media_type=_EVENT_STREAM)
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stream(scope, receive, send)


@router.get(
    "/subscribe",
    summary="The federation's signed messages under a topic, as server-sent events "
    "(administrators).",
    response_class=Response,
    responses=media(
        {_EVENT_STREAM: {"type": "string", "description": "text/event-stream"}},
        400,
        401,
        403,
        429,
        503,
    ),
)
async def subscribe(
    request: Request,
    topic: Annotated[
        list[str],
        Query(
            description="a subject pattern (consent.*, credential.issued, events.>); "
            f"repeat for several, at most {_MAX_TOPICS}"
        ),
    ],
    authorization: Annotated[str | None, Header()] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    if len(topic) > _MAX_TOPICS:
        raise TopicInvalid(f"at most {_MAX_TOPICS} topics")
    parsed = [parse_topic(one) for one in topic]
    if not authorization or not authorization.startswith("Bearer cct_"):
        raise UnauthorizedError("a bearer token is required")
    slots: StreamSlots = request.app.state.stream_slots
    key = hashlib.sha256(authorization.encode("utf-8")).hexdigest()
    try:
        slots.take(key)
    except StreamsFull as full:
        return _refusal(full, request, full.retry_after)
    except TooManyStreams as many:
        return _refusal(many, request, 5)
    rt: Runtime = request.app.state.runtime
    try:
        start = await to_thread.run_sync(_start, rt, authorization, last_event_id)
    except BaseException:
        slots.give_back(key)
        raise
    return _StreamResponse(_Stream(rt, slots, key, parsed, start))
