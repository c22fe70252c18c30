"""Following the platform's streams: a durable JetStream pull consumer per stream.

Each consumer is named ``<node id>-<stream>`` (the node id is made on first start and kept
with the pins), delivers every message from the stream's start, and is acknowledged a batch
at a time (``AckPolicy.ALL``: acknowledging stream sequence *s* acknowledges every message
up to *s*).  A batch is acknowledged only after :meth:`Mirror.accept` stored each of its
messages, found it already stored, or dropped (and counted) it, and only up to the highest
sequence of those: on a transient failure the batch, and after a gap what follows it, are
not acknowledged (``nak`` with a delay), so JetStream delivers them again in order.
Continuity: the node keeps the last stream sequence it processed per stream (counter
``seq.<stream>``): a sequence at or below it is a redelivery (acknowledged, nothing stored
twice); one past the next is a gap, and the node waits for the missing message (``nak``;
counter ``gaps``).  Since the node stores a stream's messages in sequence order and never
past a gap, every sequence up to the one acknowledged is stored.  So a node killed at any
point, or a NATS server restarted, loses and doubles nothing.

A consumer made before batch acknowledgements (``AckPolicy.EXPLICIT``: JetStream cannot
change a consumer's ack policy) is deleted and made again from the node's cursor, delivering
from ``seq.<stream>`` + 1 — what the node stored it never asks for again; a crash between
the two makes it from the cursor at the next start.  So is a consumer deleted under a
running follower: its reader raises :class:`~credit_commons.node.pull.ConsumerLost` (a
``409 Consumer Deleted``, or the server's silence), logged, and the back-off binds again.
The batches are read with :class:`~credit_commons.node.pull.PullConsumer` (one
subscription, not a task per message).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

import nats
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from credit_commons.core.db import transaction
from credit_commons.federation import STREAMS
from credit_commons.node import store
from credit_commons.node.mirror import Mirror
from credit_commons.node.pull import ConsumerLost, PullConsumer
from credit_commons.node.quotas import Quotas

__all__ = ["Follower"]

log = logging.getLogger("credit_commons.node")

_RETRY = 1.0  # seconds before a message that failed transiently comes again
_CHECKPOINTS = "COMMONS_CHECKPOINTS"
_BACKOFF_MAX = 10.0


def _sequence(message: Any) -> int:
    return int(message.metadata.sequence.stream)


class Follower:
    """Consumes every federation stream of the NATS server at ``peer`` into ``mirror``,
    within ``quotas`` when given (:mod:`credit_commons.node.quotas`).  ``batch`` messages
    are fetched, verified and stored at a time (one unit of work, one commit) while
    following live; a stream more than ``4 × batch`` behind (a catch-up) is fetched
    ``4 × batch`` at a time, as many as its consumer lets be unacknowledged, since a larger
    unit of work costs less CPU an event while a larger live batch delayed propagation
    under load (docs/federation.md, "Figures").  An existing consumer's
    ``max_ack_pending`` follows ``batch``.  While checkpoints are due the other streams
    wait for them, at most ``checkpoint_wait`` seconds without the checkpoints consumer
    storing one."""

    def __init__(
        self,
        mirror: Mirror,
        peer: str,
        node_id: str,
        *,
        batch: int = 256,
        idle: float = 0.2,
        timeout: float = 5.0,
        quotas: Quotas | None = None,
        checkpoint_wait: float = 5.0,
    ) -> None:
        self.mirror, self.peer, self.node_id = mirror, peer, node_id
        self.quotas, self.checkpoint_wait = quotas, checkpoint_wait
        # Whether checkpoints are still to be mirrored (unknown: yes), and when the last
        # checkpoint batch was stored (see _waits_for_checkpoints).
        self._checkpoints_due, self._checkpoint_progress = True, time.monotonic()
        self.batch, self.idle, self.timeout = batch, idle, timeout
        self.processed: dict[str, int] = {}
        # Per stream, the messages JetStream held for this consumer at the last fetch.
        self.pending: dict[str, int] = {}
        # Per stream, its first sequence when the consumer was bound.
        self._first: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- in a thread of its own ------------------------------------------------------------

    def start(self) -> None:
        """Follow on a thread of its own until :meth:`stop`."""
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self.run()), name="node-follower", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop at the next message boundary and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout * 3)

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                await self._follow()
                failures = 0
            except (NatsError, OSError, TimeoutError) as exc:
                failures += 1
                delay = min(_BACKOFF_MAX, 0.25 * 2 ** min(failures, 6))
                if isinstance(exc, ConsumerLost):
                    # Deleted, or silent (node/pull.py): bound again after the back-off,
                    # and made again from the cursor when missing (_bind).
                    log.warning(
                        "node: a stream's consumer was lost; binding again",
                        extra={
                            "fields": {"stream": exc.stream, "reason": exc.reason, "seconds": delay}
                        },
                    )
                else:
                    log.warning(
                        "node: NATS unavailable (%s); retrying in %.1f s",
                        type(exc).__name__,
                        delay,
                    )
                await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        end = asyncio.get_running_loop().time() + seconds
        while not self._stop.is_set() and asyncio.get_running_loop().time() < end:
            await asyncio.sleep(min(0.05, seconds))

    async def _follow(self) -> None:
        async def quiet(_exc: Exception) -> None:
            return None

        nc = await nats.connect(
            servers=[self.peer],
            connect_timeout=self.timeout,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            error_cb=quiet,
        )
        self._checkpoints_due, self._checkpoint_progress = True, time.monotonic()
        try:
            js = nc.jetstream(timeout=self.timeout)
            # One task per stream: a quiet stream never delays a busy one.  The first to
            # fail ends the others, and its error reaches run()'s back-off.
            tasks = [asyncio.create_task(self._stream(nc, js, spec.name)) for spec in STREAMS]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            failures = [t.exception() for t in done if not t.cancelled()]
            for failure in failures:  # every one retrieved; the first raised
                if failure is not None:
                    raise failure
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), self.timeout)

    async def _stream(self, nc: Any, js: JetStreamContext, stream: str) -> None:
        sub = None
        while not self._stop.is_set():
            if not nc.is_connected:
                raise ConnectionError("NATS connection lost")
            if sub is None:
                sub = await self._bind(nc, js, stream)
                if sub is None:
                    await self._sleep(self.idle)
                    continue
            if stream != _CHECKPOINTS and self._waits_for_checkpoints():
                await self._sleep(min(self.idle, 0.05))
                continue
            await self._drain(sub, stream)

    def _waits_for_checkpoints(self) -> bool:
        # Catching up, the checkpoints stream is far shorter than the others and its
        # checkpoints cover their events: an event whose leaf is mirrored is checked by that
        # leaf, not by an Ed25519 signature at about 150 times the cost (docs/federation.md,
        # "Verifying a batch against its checkpoint").  So the other streams wait while
        # checkpoints are due, for as long as the checkpoints consumer makes progress; then
        # they go on, checking by signature what no mirrored checkpoint covers.  Following
        # live, no checkpoint is due and nothing waits.
        if not self._checkpoints_due:
            return False
        return time.monotonic() - self._checkpoint_progress < self.checkpoint_wait

    async def _bind(self, nc: Any, js: JetStreamContext, stream: str) -> PullConsumer | None:
        name = f"{self.node_id}-{stream}"
        try:
            info = await js.consumer_info(stream, name)
        except NotFoundError:  # no such consumer, or no such stream yet
            info = None
        cursor = await asyncio.to_thread(self._cursor, stream)
        # nats-py gives a consumer's policies as the server's strings, not its enums.
        if info is not None and (
            AckPolicy(info.config.ack_policy) is not AckPolicy.ALL
            or int(info.ack_floor.stream_seq if info.ack_floor else 0) > cursor
        ):
            # Made before batch acknowledgements, or acknowledged past what the node
            # holds (its database restored from an older copy): made again from the
            # cursor (module).
            await js.delete_consumer(stream, name)
            info = None
        if info is None:
            start = DeliverPolicy.ALL if cursor == 0 else DeliverPolicy.BY_START_SEQUENCE
            first = None if cursor == 0 else cursor + 1
        else:  # kept: JetStream refuses another start for an existing consumer
            start = DeliverPolicy(info.config.deliver_policy or DeliverPolicy.ALL)
            first = info.config.opt_start_seq
        config = ConsumerConfig(
            durable_name=name,
            ack_policy=AckPolicy.ALL,
            deliver_policy=start,
            opt_start_seq=first,
            ack_wait=30.0,
            max_ack_pending=4 * self.batch,
        )
        try:
            await js.add_consumer(stream, config)
            state = (await js.stream_info(stream)).state
        except NotFoundError:
            return None  # the platform has not created its streams yet
        self._first[stream] = max(1, int(state.first_seq or 0))
        consumer = PullConsumer(nc, stream, name)
        await consumer.start()
        return consumer

    def _cursor(self, stream: str) -> int:
        with transaction(self.mirror.sessions) as session:
            return store.counter(session, f"seq.{stream}")

    def fetch_size(self, stream: str) -> int:
        """How many messages the next fetch of ``stream`` asks for: ``4 × batch`` (the
        consumer's ``max_ack_pending``) while the last fetch left at least that many
        pending, else ``batch``."""
        behind = self.pending.get(stream, 0) >= 4 * self.batch
        return 4 * self.batch if behind else self.batch

    async def _drain(self, sub: PullConsumer, stream: str) -> int:
        messages = await sub.fetch(self.fetch_size(stream), timeout=self.idle)
        if not messages:  # nothing new
            if stream == _CHECKPOINTS:
                self._checkpoints_due = False
            return 0
        self.pending[stream] = int(messages[-1].metadata.num_pending)
        admitted = len(messages)
        if self.quotas is not None:
            admitted = self.quotas.admit(stream, [len(m.data or b"") for m in messages])
        try:
            handled = await asyncio.to_thread(self._process, stream, messages[:admitted])
        except Exception as exc:
            log.warning("node: a %s batch will be retried (%s)", stream, type(exc).__name__)
            handled = 0
        if stream == _CHECKPOINTS and handled:
            self._checkpoint_progress = time.monotonic()
            self._checkpoints_due = handled < len(messages) or bool(
                messages[-1].metadata.num_pending
            )
        if handled:
            # One acknowledgement for the batch, on its highest sequence: every message up
            # to it is stored (or counted) before this (module), and a lost acknowledgement
            # only redelivers messages the sequence cursor then skips.
            await max(messages[:handled], key=_sequence).ack()
        if admitted < len(messages) and self.quotas is not None:
            await self._throttle(stream, messages[handled:])
            return handled
        if self.quotas is not None:
            self.quotas.clear(stream)
        for message in messages[handled:]:
            with contextlib.suppress(Exception):
                await message.nak(delay=_RETRY if handled == 0 else _RETRY / 4)
        return handled

    async def _throttle(self, stream: str, held: list[Any]) -> None:
        # Over quota: what was not admitted comes again after this stream's back-off, and
        # only this stream's consumer waits it out.
        assert self.quotas is not None
        delay = self.quotas.backoff(stream)
        for message in held:
            with contextlib.suppress(Exception):
                await message.nak(delay=delay)

        def count() -> None:
            with transaction(self.mirror.sessions) as session:
                store.count(session, f"throttled.{stream}", len(held))

        await asyncio.to_thread(count)
        log.warning(
            "node: over quota; backing off",
            extra={"fields": {"stream": stream, "held": len(held), "seconds": delay}},
        )
        await self._sleep(delay)

    def _process(self, stream: str, messages: list[Any]) -> int:
        """Store what follows the stream's cursor, in one unit of work with the cursor; the
        number of messages handled from the first (the rest wait behind a gap)."""
        counter = f"seq.{stream}"
        with transaction(self.mirror.sessions) as session:
            last = store.counter(session, counter)
        items: list[tuple[bytes, str]] = []
        handled, top = 0, last
        for message in messages:
            sequence = int(message.metadata.sequence.stream)
            # The next sequence: the stream's first one before anything was processed (a
            # batch refused at the start must not let a later one start the cursor).
            if sequence > (top + 1 if top else self._first.get(stream, 1)):
                with transaction(self.mirror.sessions) as session:
                    store.count(session, "gaps")
                break
            if sequence > top:  # else a redelivery, already stored
                items.append((message.data or b"", message.subject))
                top = sequence
            handled += 1
        if items:
            self.mirror.accept_batch(stream, items, cursor=(counter, top))
            self.processed[stream] = self.processed.get(stream, 0) + len(items)
        return handled
