"""The outbox publisher: the spine's events, in the order the log sequenced them, and the
log's checkpoints, published to NATS JetStream (docs/federation.md).

It reads the same rows the log sequences (the spine's outbox, numbered into log entries by
the sequencer), builds each event's signed messages (:mod:`.subjects`) and publishes a
bounded batch with ``Nats-Msg-Id`` = the event's id; only when JetStream has acknowledged
every message of the batch does it commit its cursor (``federation_cursors``).  So a crash
between the acknowledgements and the commit republishes the batch, and JetStream drops the
copies (per-stream deduplication within the streams' duplicate window).  Past that window
too, a restarted publisher reads each stream's last message once and skips what the stream
already holds (messages carry their leaf index; a stream receives them in leaf order):
nothing is duplicated, and nothing is lost, since the cursor never passes an unacknowledged
message.  That skip trusts the stream to be this platform's: when it connects, the publisher
checks that each stream's last message is (:mod:`.ownership`) and otherwise publishes
nothing and moves no cursor — two platforms on one NATS account share every stream, and
the second would skip its own events as already published — but logs the refusal as an
error naming each stream and whose messages it holds, records it for ``/metrics``
(``federation_refusals``) and tries again with the back-off.  While connected it checks
again whenever JetStream's acknowledgements show a stream written to by someone else: a
sequence number past the one it expected (every message in between is read and checked: two
publishers of this one platform, say during a rolling upgrade, leave gaps of their own
messages, and a foreign message can sit anywhere in one) or a message acknowledged as a
duplicate (the stream's last message is checked: a republish after a crash before the
cursor's commit leaves this platform's own message last, a shared stream another
platform's).  A refusal, once recorded, stands until a connection finds every message of
every stream this platform's (read in full, newest first): the last message being its own is
no evidence, since a refused batch is in the stream before the check that refuses it.
Message ids carry the log key's thumbprint where they would otherwise be the same on every
platform (checkpoints), so JetStream never drops one platform's message as another's copy.

It runs on its own asyncio loop in a thread of its own, so the worker thread (or any other)
calls :meth:`Publisher.run_pass` synchronously.  When NATS is unreachable a pass returns at
once until a back-off (0.5 s doubling to 30 s) has passed, and the state change is logged
once, naming the server without its credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from opentelemetry.trace import SpanKind
from sqlalchemy.orm import Session

from credit_commons.core.db import transaction
from credit_commons.core.tracing import span, tracer
from credit_commons.federation.feed import spine_batch
from credit_commons.federation.models import FederationCursorRow
from credit_commons.federation.ownership import OurLog, Refusal, StreamsNotOurs, own_position
from credit_commons.federation.refusals import clear_refusals, record_refusals, refusals
from credit_commons.federation.subjects import (
    MAX_MESSAGE_BYTES,
    STREAMS,
    Message,
    StreamSpec,
    checkpoint_message,
    cosigned_checkpoint_message,
)
from credit_commons.keys import KeyType, PublicKey, StoredSigner, thumbprint
from credit_commons.ledger import service as ledger
from credit_commons.runtime import Runtime

# nats-py (with aiohttp, about 0.3 s of CPU to import) is imported by the methods that talk to
# NATS: only a platform configured with COMMONS_NATS_URL builds a Publisher, and every
# process that imports the HTTP app imports this module.
if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext
    from nats.js.api import PubAck

__all__ = ["CHECKPOINTS", "SPINE", "Publisher", "PublisherState", "read_cursor"]

log = logging.getLogger("credit_commons.federation")
_tracer = tracer("credit_commons.federation")

SPINE = "spine"
"""The cursor of the spine's events: the next leaf index to publish."""
CHECKPOINTS = "checkpoints"
"""The cursor of the log's checkpoints: the last size published."""

_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 30.0
_MAX_BATCHES = 20  # per pass, so the worker's other steps keep their turn under a backlog
_MAX_STEPS_BACK = 64  # deleted sequences stepped over to a stream's last existing message
_READ_AT_ONCE = 64  # messages read concurrently when a range of a stream is checked


class PublisherState(StrEnum):
    """Whether the last attempt reached NATS (and found streams it may publish to)."""

    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"
    REFUSED = "refused"  # the streams hold another platform's messages: nothing published


def redacted_server(url: str) -> str:
    """``scheme://host:port`` of a NATS URL: never its user, password or token."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}:{parts.port or 4222}"


def read_cursor(session: Session, name: str) -> int:
    """The committed position of cursor ``name`` (0 before the first commit)."""
    row = session.get(FederationCursorRow, name)
    return 0 if row is None else int(row.position)


def _commit_cursor(session: Session, name: str, position: int, now: datetime) -> None:
    # Called only after JetStream acknowledged every message up to ``position``.
    row = session.get(FederationCursorRow, name, with_for_update=True)
    if row is None:
        session.add(FederationCursorRow(name=name, position=position, updated_at=now))
    elif position > row.position:
        row.position, row.updated_at = position, now


@dataclass
class _Connection:
    nc: Client
    js: JetStreamContext
    ours: OurLog
    tails: dict[str, int] = field(default_factory=dict)  # stream -> last position it holds
    seqs: dict[str, int] = field(default_factory=dict)  # stream -> last sequence seen


class Publisher:
    """Publishes the spine's events and the log's checkpoints to the JetStream at ``url``.

    ``batch`` messages' worth of events per batch (``COMMONS_FEDERATION_BATCH``), at most
    20 batches per pass; ``timeout`` seconds for a connection and for a batch's
    acknowledgements.
    """

    def __init__(self, rt: Runtime, url: str, *, batch: int = 500, timeout: float = 5.0) -> None:
        self.rt, self._url, self.batch, self.timeout = rt, url, batch, timeout
        self.server = redacted_server(url)
        self.state = PublisherState.UNKNOWN
        self._conn: _Connection | None = None
        self._failures = 0
        self._next_attempt = 0.0
        self.refusals: tuple[Refusal, ...] = ()  # the last connection's, while REFUSED
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="federation-publisher", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:  # never the URL: it may carry credentials
        return f"Publisher(server={self.server!r}, state={self.state.value})"

    # -- the synchronous face ------------------------------------------------------------

    def run_pass(self) -> dict[str, int]:
        """Publish what is pending (bounded) unless backing off; what was published."""
        if time.monotonic() < self._next_attempt:
            return {}
        future = asyncio.run_coroutine_threadsafe(self._pass(), self._loop)
        return future.result()

    def close(self) -> None:
        """Close the connection and stop the loop's thread."""
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._drop(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    # -- on the loop ---------------------------------------------------------------------

    async def _publish_pending(self, conn: _Connection) -> tuple[int, int, int, int]:
        events = messages = 0
        for _ in range(_MAX_BATCHES):
            done, sent = await self._spine_batch(conn)
            events, messages = events + done, messages + sent
            if done < self.batch:
                break
        checkpoints = await self._checkpoint_batch(conn)
        return events, messages, checkpoints, await self._cosigned_batch(conn)

    async def _pass(self) -> dict[str, int]:
        from nats.errors import Error as NatsError  # noqa: PLC0415  # deferred: nats-py with aiohttp, only when publishing

        try:
            # Every wait below is bounded by ``timeout``; this bounds the batches as a whole
            # (not the connection's check, which reads whole streams while a refusal stands).
            conn = await self._connect()
            bound = self.timeout * (_MAX_BATCHES + 4)
            published = await asyncio.wait_for(self._publish_pending(conn), bound)
        except (NatsError, OSError, TimeoutError) as exc:
            await self._drop()
            self._went(PublisherState.DOWN, exc)
            self._back_off()
            return {}
        except StreamsNotOurs as exc:
            await self._drop()
            self._refused(exc)
            self._back_off()
            return {}
        self._went(PublisherState.UP, None)
        self._failures, self._next_attempt = 0, 0.0
        names = ("events", "messages", "checkpoints", "cosigned")
        report = {f"federation_{name}": n for name, n in zip(names, published, strict=True)}
        return {k: v for k, v in report.items() if v}

    def _back_off(self) -> None:
        self._failures += 1
        delay = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (self._failures - 1))
        self._next_attempt = time.monotonic() + delay

    def _refused(self, exc: StreamsNotOurs) -> None:
        # Recorded for /metrics, and logged as an error each time what the streams hold
        # changes (not at every retry).
        with transaction(self.rt.sessions) as session:
            record_refusals(session, exc.refusals, self.rt.clock.now())
        if self.state is PublisherState.REFUSED and exc.refusals == self.refusals:
            return
        self.state, self.refusals = PublisherState.REFUSED, exc.refusals
        log.error(
            "federation: NATS at %s: %s; nothing published and the cursors did not move. %s",
            self.server,
            exc.detail,
            exc.hint,
            extra={"fields": {"code": exc.code, "streams": [r.stream for r in exc.refusals]}},
        )

    def _went(self, state: PublisherState, exc: BaseException | None) -> None:
        if state is self.state:
            return
        previous, self.state = self.state, state
        self.refusals = ()
        if state is PublisherState.DOWN:
            # The class name only: a NATS error's text may echo the URL it was given.
            log.warning(
                "federation: NATS at %s unavailable (%s); retrying with back-off",
                self.server,
                type(exc).__name__,
            )
        elif previous is PublisherState.DOWN:
            log.warning("federation: NATS at %s reachable again", self.server)
        elif previous is PublisherState.REFUSED:
            log.warning(
                "federation: the streams on NATS at %s hold only this platform's messages "
                "now; publishing",
                self.server,
            )
        else:
            log.info("federation: publishing to NATS at %s", self.server)

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.nc.close(), self.timeout)

    async def _connect(self) -> _Connection:
        if self._conn is not None and self._conn.nc.is_connected:
            return self._conn
        await self._drop()

        import nats  # noqa: PLC0415  # deferred: nats-py with aiohttp, only when publishing

        async def quiet(_exc: Exception) -> None:  # errors surface in _pass, logged once
            return None

        nc = await nats.connect(
            servers=[self._url],
            connect_timeout=self.timeout,
            # One attempt (nats-py retries the first connection forever with 0): this
            # publisher reconnects on its own schedule, with its back-off.
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.05,
            error_cb=quiet,
        )
        try:
            js = nc.jetstream(timeout=self.timeout)
            conn, refused = _Connection(nc, js, self._our_log()), list[Refusal]()
            with transaction(self.rt.read_sessions) as session:
                standing = bool(refusals(session))
            for spec in STREAMS:
                try:
                    await _ensure_stream(js, spec)
                    conn.tails[spec.name], conn.seqs[spec.name] = await _tail(conn, spec.name)
                    if standing:  # cleared only when every message is this platform's
                        first = (await js.stream_info(spec.name)).state.first_seq
                        await _check_range(conn, spec.name, first, conn.seqs[spec.name])
                except StreamsNotOurs as exc:
                    refused.extend(exc.refusals)
            if refused:
                raise StreamsNotOurs(refused)
            if standing:
                with transaction(self.rt.sessions) as session:
                    clear_refusals(session)
        except BaseException:  # whatever failed, this connection is not kept: close it
            with contextlib.suppress(Exception):
                await nc.close()
            raise
        self._conn = conn
        return conn

    def _our_log(self) -> OurLog:
        identity = ledger.log_identity(self.rt)
        key = PublicKey.from_raw(KeyType.ED25519, identity.public_key)
        return OurLog(frozenset((*identity.frozen_origins, identity.origin)), key)

    async def _publish(self, conn: _Connection, messages: list[Message]) -> int:
        """Publish and wait for every acknowledgement; the number actually sent.  When
        tracing is on, one producer span per batch, naming the streams (a fixed set,
        federation/subjects.py) and the count; never a subject's tail or a body."""
        streams = sorted({message.stream for message in messages})
        with span(
            _tracer,
            f"publish {','.join(streams)}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "send",
                "messaging.destination.name": ",".join(streams),
            },
        ) as current:
            sent = await self._publish_batch(conn, messages)
            current.set_attribute("messaging.batch.message_count", sent)
            return sent

    async def _publish_batch(self, conn: _Connection, messages: list[Message]) -> int:
        futures = []
        for message in messages:
            if message.ordered and message.position <= conn.tails.get(message.stream, -1):
                continue  # the stream holds it already (see the module)
            headers = {"Nats-Msg-Id": message.msg_id}
            futures.append(
                await conn.js.publish_async(
                    message.subject, message.body, stream=message.stream, headers=headers
                )
            )
        acks: list[PubAck] = []
        if futures:
            acks = list(await asyncio.wait_for(asyncio.gather(*futures), self.timeout))
        await _check_acks(conn, acks)
        for message in messages:
            if message.ordered:
                tail = conn.tails.get(message.stream, -1)
                conn.tails[message.stream] = max(tail, message.position)
        return sum(1 for ack in acks if not ack.duplicate)

    async def _spine_batch(self, conn: _Connection) -> tuple[int, int]:
        rt = self.rt
        with transaction(rt.read_sessions) as session:
            start = read_cursor(session, SPINE)
            messages, leaves, next_index = spine_batch(session, rt, start, self.batch)
        if not leaves:
            return 0, 0
        sent = await self._publish(conn, messages)
        with transaction(rt.sessions) as session:
            _commit_cursor(session, SPINE, next_index, rt.clock.now())
        return leaves, sent

    async def _checkpoint_batch(self, conn: _Connection) -> int:
        rt = self.rt
        with transaction(rt.read_sessions) as session:
            after = read_cursor(session, CHECKPOINTS)
            rows = ledger.checkpoints_after(session, after, self.batch)
            if not rows:
                return 0
            origin, signer = self._signing(session)
        key = thumbprint(conn.ours.key)
        messages = [checkpoint_message(s, n, origin, signer, at, log_key=key) for s, n, at in rows]
        await self._publish(conn, messages)
        with transaction(rt.sessions) as session:
            _commit_cursor(session, CHECKPOINTS, rows[-1][0], rt.clock.now())
        return len(rows)

    async def _cosigned_batch(self, conn: _Connection) -> int:
        # The committee's cosigned notes not yet published, each once its plain checkpoint
        # was: flagged per size, since an older size can be cosigned after a newer one.
        rt = self.rt
        with transaction(rt.read_sessions) as session:
            plain = read_cursor(session, CHECKPOINTS)
            rows = ledger.cosigned_unpublished(session, plain, self.batch)
            if not rows:
                return 0
            origin, signer = self._signing(session)
        key = thumbprint(conn.ours.key)
        messages = [
            cosigned_checkpoint_message(s, n, origin, signer, at, log_key=key) for s, n, at in rows
        ]
        await self._publish(conn, messages)
        with transaction(rt.sessions) as session:
            ledger.mark_cosigned_published(session, [r[0] for r in rows], rt.clock.now())
        return len(rows)

    def _signing(self, session: Session) -> tuple[str, StoredSigner]:
        identity = ledger.log_identity(self.rt)
        return identity.origin, self.rt.key_store.signer(session, identity.key_name)


async def _ensure_stream(js: JetStreamContext, spec: StreamSpec) -> None:
    """Create ``spec``'s stream, or bring an existing one to ``spec``'s configuration."""
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig  # noqa: PLC0415  # deferred: nats-py with aiohttp, only when publishing
    from nats.js.errors import BadRequestError  # noqa: PLC0415  # deferred: nats-py with aiohttp, only when publishing

    config = StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_msg_size=MAX_MESSAGE_BYTES,
        duplicate_window=spec.duplicate_window,
        num_replicas=1,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:  # exists with another configuration: bring it to this one
        await js.update_stream(config)


async def _tail(conn: _Connection, stream: str) -> tuple[int, int]:
    """The position of ``stream``'s last message (-1 for none) and its last sequence.
    Raises :class:`StreamsNotOurs` when that message is not this platform's.

    The stream is empty only when it counts no message: a last sequence that was deleted
    is stepped back from, to the last message that exists (at most ``_MAX_STEPS_BACK``
    sequences; past them the stream is refused, since what it holds cannot be told)."""
    from nats.js.errors import NotFoundError  # noqa: PLC0415  # deferred: nats-py with aiohttp, only when publishing

    state = (await conn.js.stream_info(stream)).state
    if not state.messages:
        return -1, state.last_seq
    first = max(state.first_seq, state.last_seq - _MAX_STEPS_BACK + 1)
    for seq in range(state.last_seq, first - 1, -1):
        try:
            raw = await conn.js.get_msg(stream, seq)
        except NotFoundError:
            continue  # deleted: the message before it is the last one
        return own_position(stream, raw.data or b"", conn.ours), state.last_seq
    raise StreamsNotOurs(
        [Refusal(stream, f"no readable message in its last {_MAX_STEPS_BACK} sequences", None)]
    )


async def _check_range(conn: _Connection, stream: str, first: int, last: int) -> None:
    """Check that every message of ``stream`` from sequence ``last`` down to ``first`` is
    this platform's (deleted ones skipped), ``_READ_AT_ONCE`` read concurrently, newest
    first.  Raises :class:`StreamsNotOurs` at the first that is not."""
    from nats.js.api import RawStreamMsg  # noqa: PLC0415  # deferred: nats-py with aiohttp, only when publishing
    from nats.js.errors import NotFoundError  # noqa: PLC0415  # deferred: nats-py with aiohttp, only when publishing

    async def read(seq: int) -> RawStreamMsg | None:
        try:
            return await conn.js.get_msg(stream, seq)
        except NotFoundError:  # deleted, or before the stream's first sequence
            return None

    top, first = last, max(first, 1)  # an empty stream's first sequence can be 0
    while top >= first:
        bottom = max(first, top - _READ_AT_ONCE + 1)
        for raw in await asyncio.gather(*(read(seq) for seq in range(top, bottom - 1, -1))):
            if raw is not None:
                own_position(stream, raw.data or b"", conn.ours)
        top = bottom - 1


async def _check_acks(conn: _Connection, acks: Sequence[PubAck]) -> None:
    """Check again whose messages a stream holds when its acknowledgements show another
    publisher: a sequence past the next one expected (every message in between must be
    this platform's: another publisher of this platform writes such gaps too) or a
    duplicate (the stream's last message must be this platform's, as after a republish).
    Raises :class:`StreamsNotOurs`."""
    rechecked: set[str] = set()
    for ack in acks:
        if ack.duplicate:
            if ack.stream not in rechecked:  # the sequences stay for the check below
                rechecked.add(ack.stream)
                await _tail(conn, ack.stream)
            continue
        expected = conn.seqs.get(ack.stream, 0) + 1
        # Written by another publisher meanwhile (nothing when ack.seq is the one expected).
        await _check_range(conn, ack.stream, expected, ack.seq - 1)
        conn.seqs[ack.stream] = max(conn.seqs.get(ack.stream, 0), ack.seq)
