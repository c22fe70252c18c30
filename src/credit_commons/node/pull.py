"""A durable JetStream pull consumer read in batches through one subscription
(``$JS.API.CONSUMER.MSG.NEXT``, the JetStream API nats-py's ``fetch`` sends).

nats-py's ``PullSubscription.fetch`` awaits every message of a batch on its own
(``next_msg``: a task, ``asyncio.wait_for`` and a UUID per message), about 20 µs of CPU an
event on the bench machine, half of what receiving a message costs there
(docs/federation.md, "Per-event CPU, third round").  Here the subscription's callback
appends each message to a list, and a fetch waits only for its request to end: the batch
full, or the server's status message closing it (``404`` nothing there, ``408`` the
request expired, ``409`` a limit of the consumer's), or the caller's deadline.

A fetch asks first for what is there (``no_wait``, so a caught-up follower gets a partial
batch at once), and only when nothing is there for what comes before the deadline,
returning as soon as something came, as nats-py's ``fetch`` does (a message published
while a follower waits reaches the mirror at once, not at the request's expiry).  The
server keeps that request open until it expires: what it delivers afterwards, like any
message that arrives after its request was given up, is kept and returned by the next
fetch; the caller, which checks each message's stream sequence, decides what it is.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import APIError

__all__ = ["PullConsumer"]

_HEARTBEAT = "100"
_ENDS = frozenset({"404", "408", "409"})  # no messages, request expired, consumer limit
_STATUS, _DESCRIPTION = "Status", "Description"


class PullConsumer:
    """Batches of the durable consumer ``durable`` of ``stream`` over connection ``nc``;
    :meth:`start` before the first :meth:`fetch`."""

    def __init__(self, nc: Client, stream: str, durable: str) -> None:
        self._nc = nc
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._messages: list[Msg] = []
        self._ends = 0  # status messages received: each ends one request
        self._error: APIError | None = None
        self._arrived = asyncio.Event()
        self._sub: Subscription | None = None

    async def start(self) -> None:
        """Subscribe to the inbox the server delivers the requested messages to."""
        self._sub = await self._nc.subscribe(self._inbox, cb=self._receive)

    async def _receive(self, msg: Msg) -> None:
        # The subscription's task calls this for each message in order, without a wait
        # between those already received.
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status is None:
            self._messages.append(msg)
        elif status == _HEARTBEAT:
            return
        else:
            if status not in _ENDS:  # anything else is the server refusing the request
                description = msg.headers.get(_DESCRIPTION) if msg.headers else None
                self._error = APIError(code=int(status), description=description)
            self._ends += 1
        self._arrived.set()

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """Up to ``batch`` messages (more when earlier requests' messages arrived late),
        waiting at most about ``timeout`` seconds; ``[]`` when none came.  Raises
        :class:`~nats.js.errors.APIError` when the server refused a request."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # What is there now, at once.
        await self._request({"batch": batch, "no_wait": True}, batch, deadline)
        if not self._messages:
            # Nothing: wait for what comes, the server ending the request just before the
            # deadline (its expiry in nanoseconds).
            expires = int((deadline - loop.time()) * 1e9) - 1_000_000
            if expires > 0:
                await self._request({"batch": batch, "expires": expires}, 1, deadline)
        messages, self._messages = self._messages, []
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return messages

    async def _request(self, body: dict[str, Any], enough: int, deadline: float) -> None:
        # Ask, and wait until ``enough`` messages came, the server ended a request, or the
        # deadline passed.
        ends, had = self._ends, len(self._messages)
        await self._nc.publish(self._next, json.dumps(body).encode(), reply=self._inbox)
        loop = asyncio.get_running_loop()
        while len(self._messages) - had < enough and self._ends == ends:
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
