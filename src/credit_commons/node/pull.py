"""A durable JetStream pull consumer read in batches through one subscription
(``$JS.API.CONSUMER.MSG.NEXT``, the JetStream API nats-py's ``fetch`` sends).

nats-py's ``PullSubscription.fetch`` awaits every message of a batch on its own
(``next_msg``: a task, ``asyncio.wait_for`` and a UUID per message), about 20 µs of CPU an
event on the bench machine, half of what receiving a message costs there
(docs/federation.md, "Per-event CPU, third round").  Here the subscription's callback
appends each message to a list, and a fetch waits only for its own request to end.

Each request has a reply subject of its own (``<inbox>.<n>``, one wildcard subscription for
all, as ADR-37's ``consume`` has one for its requests).  JetStream delivers a message under
its stream subject, so a message cannot be told to a request, but a status message comes
on the reply subject of the request it ends; a request ends when ``enough`` messages came
after it was sent, when its own status came (``404`` nothing there, ``408`` it expired, a
``409`` that ends one request: a limit exceeded, ADR-37 "Status handling"), or at the
caller's deadline.  A status meant for another request — the ``408`` of a request given up
earlier — ends nothing.

A fetch asks first for what is there (``no_wait``, so a caught-up follower gets a partial
batch at once), and only when nothing is there for what comes before the deadline,
returning as soon as something came, as nats-py's ``fetch`` does (a message published
while a follower waits reaches the mirror at once, not at the request's expiry).  The
server keeps that request open until it expires: what it delivers afterwards, like any
message that arrives after its request was given up, is kept and returned by the next
fetch; the caller, which checks each message's stream sequence, decides what it is.

The consumer can go away under a reader.  ``409 Consumer Deleted`` (the consumer or its
stream deleted while a request waited) and ``409 Consumer is push based`` end the reader
(ADR-37 lists them as the terminal errors): :class:`ConsumerLost`.  A request sent to a
consumer that no longer exists is answered by nothing at all, not even a ``no_wait`` one, so
the server's silence is checked too: every request is answered by its expiry (messages, or
its ``404``/``408``), which is at most the fetch's ``timeout`` — the role ADR-37's idle
heartbeats play for long requests — and when nothing at all came for ``silence`` seconds
past the expiry of a request sent after the last thing heard, the consumer is taken as
gone (:class:`ConsumerLost`).  Any other status (``400``, the server refusing a request)
raises :class:`~nats.js.errors.APIError`.  Either reaches the follower's back-off, which
binds again and makes a missing consumer again from its cursor (node/follower.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js.errors import APIError

__all__ = ["ConsumerLost", "PullConsumer"]

_HEARTBEAT = "100"
_ENDS = frozenset({"404", "408", "409"})  # no messages, request expired, a request's limit
# ADR-37, "Status handling": the errors that end a consumer, not one request.
_TERMINAL = frozenset({"Consumer Deleted", "Consumer is push based"})
_STATUS, _DESCRIPTION = "Status", "Description"
_SILENCE = 2.0  # seconds past a request's expiry without a word from the server


class ConsumerLost(NatsError):
    """The consumer is gone: deleted (with its stream or alone), made push based, or no
    longer answering its pull requests.  ``reason`` says which."""

    def __init__(self, stream: str, durable: str, reason: str) -> None:
        super().__init__(f"consumer {durable} of {stream}: {reason}")
        self.stream, self.durable, self.reason = stream, durable, reason


class PullConsumer:
    """Batches of the durable consumer ``durable`` of ``stream`` over connection ``nc``;
    :meth:`start` before the first :meth:`fetch`.  ``silence``: seconds past a request's
    expiry with nothing from the server before the consumer is taken as gone."""

    def __init__(self, nc: Client, stream: str, durable: str, *, silence: float = _SILENCE) -> None:
        self._nc, self._stream, self._durable = nc, stream, durable
        self._silence = silence
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._numbers = itertools.count(1)
        self._messages: list[Msg] = []
        # The reply token of the request waited for, and whether its status came.
        self._waiting, self._ended = "", False
        self._error: NatsError | None = None
        # When the server owes an answer: the earliest expiry of a request sent after the
        # last message heard (None: nothing owed).
        self._owed: float | None = None
        self._arrived = asyncio.Event()
        self._sub: Subscription | None = None

    async def start(self) -> None:
        """Subscribe to the inbox the server delivers the requested messages to."""
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._receive)

    async def _receive(self, msg: Msg) -> None:
        # The subscription's task calls this for each message in order, without a wait
        # between those already received.
        self._owed = None  # the server answered
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status is None:
            self._messages.append(msg)
        elif status == _HEARTBEAT:
            return
        else:
            description = (msg.headers.get(_DESCRIPTION) if msg.headers else None) or ""
            if status == "409" and description in _TERMINAL:
                self._error = ConsumerLost(self._stream, self._durable, description)
            elif status not in _ENDS:  # anything else is the server refusing a request
                self._error = APIError(code=int(status), description=description)
            if msg.subject.rpartition(".")[2] == self._waiting:
                self._ended = True  # another request's status ends nothing
        self._arrived.set()

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """Up to ``batch`` messages (more when earlier requests' messages arrived late),
        waiting at most about ``timeout`` seconds; ``[]`` when none came.  Raises
        :class:`ConsumerLost` when the consumer is gone (see the module) and
        :class:`~nats.js.errors.APIError` when the server refused a request."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._check()
        # What is there now, at once.
        await self._request({"batch": batch, "no_wait": True}, 0.0, batch, deadline)
        if not self._messages and self._error is None:
            # Nothing: wait for what comes, the server ending the request just before the
            # deadline (its expiry in nanoseconds).
            expires = deadline - loop.time() - 0.001
            if expires > 0:
                body = {"batch": batch, "expires": int(expires * 1e9)}
                await self._request(body, expires, 1, deadline)
        messages, self._messages = self._messages, []
        if self._error is not None:
            # What came is not acknowledged: JetStream delivers it again, or the consumer
            # made again from the cursor does.
            error, self._error = self._error, None
            raise error
        return messages

    def _check(self) -> None:
        # The server's silence past what it owes: the consumer (or its stream) is gone.
        owed = self._owed
        if owed is not None and asyncio.get_running_loop().time() > owed + self._silence:
            self._owed = None
            raise ConsumerLost(
                self._stream, self._durable, f"no answer {self._silence:g} s past a request"
            )

    async def _request(
        self, body: dict[str, Any], expires: float, enough: int, deadline: float
    ) -> None:
        # Ask, and wait until ``enough`` messages came, this request's status came, an error
        # came, or the deadline passed.
        token = str(next(self._numbers))
        self._waiting, self._ended = token, False
        had = len(self._messages)
        loop = asyncio.get_running_loop()
        due = loop.time() + expires
        self._owed = due if self._owed is None else min(self._owed, due)
        await self._nc.publish(
            self._next, json.dumps(body).encode(), reply=f"{self._inbox}.{token}"
        )
        while len(self._messages) - had < enough and not self._ended and self._error is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    async def close(self) -> None:
        """Unsubscribe (the connection's close does it too)."""
        if self._sub is not None:
            await self._sub.unsubscribe()
