"""The follower's fetch size: ``batch`` following live, ``4 × batch`` (the consumer's
``max_ack_pending``) while the last fetch of that stream left at least that many
pending — a catch-up, where a larger unit of work costs less CPU an event; and its one
acknowledgement a batch (``AckPolicy.ALL``), on the highest sequence handled, never on a
batch that failed or past a gap."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from credit_commons.node import Follower, Mirror


def test_a_stream_far_behind_is_fetched_four_batches_at_a_time() -> None:
    follower = Follower(cast(Mirror, cast(Any, None)), "nats://127.0.0.1:1", "node", batch=32)
    assert follower.fetch_size("COMMONS_EVENTS") == 32  # nothing known yet
    follower.pending["COMMONS_EVENTS"] = 128
    follower.pending["COMMONS_BUS"] = 127
    assert follower.fetch_size("COMMONS_EVENTS") == 128
    assert follower.fetch_size("COMMONS_BUS") == 32
    assert follower.fetch_size("COMMONS_RULES") == 32
    follower.pending["COMMONS_EVENTS"] = 0  # caught up: live batches again
    assert follower.fetch_size("COMMONS_EVENTS") == 32


class _Message:
    """A fetched message as the follower reads it: its stream sequence, and whether it was
    acknowledged or negatively acknowledged."""

    def __init__(self, sequence: int) -> None:
        self.metadata = SimpleNamespace(sequence=SimpleNamespace(stream=sequence), num_pending=0)
        self.data, self.subject = b"", "events.x"
        self.acked, self.naked = False, False

    async def ack(self) -> None:
        self.acked = True

    async def nak(self, delay: float | None = None) -> None:
        del delay
        self.naked = True


class _Consumer:
    def __init__(self, messages: list[_Message]) -> None:
        self.messages = messages

    async def fetch(self, batch: int, timeout: float) -> list[_Message]:
        del batch, timeout
        return self.messages


def test_a_batch_is_acknowledged_once_on_its_highest_handled_sequence() -> None:
    # Handled: 11, 12 and a redelivery of 9 (the cursor stood at 10); the gap at 14 stops
    # the batch, so 14 and 15 wait.  One acknowledgement (AckPolicy.ALL), on 12 — the
    # highest handled, not the last handled — and none past the gap.
    follower = Follower(cast(Mirror, cast(Any, None)), "nats://127.0.0.1:1", "node", batch=8)
    messages = [_Message(s) for s in (11, 12, 9, 14, 15)]
    follower._process = lambda stream, batch: 3  # type: ignore[method-assign]
    handled = asyncio.run(follower._drain(cast(Any, _Consumer(messages)), "COMMONS_EVENTS"))
    assert handled == 3
    assert [m.acked for m in messages] == [False, True, False, False, False]
    assert [m.naked for m in messages] == [False, False, False, True, True]


def test_a_batch_that_failed_is_not_acknowledged() -> None:
    follower = Follower(cast(Mirror, cast(Any, None)), "nats://127.0.0.1:1", "node", batch=8)
    messages = [_Message(s) for s in (1, 2, 3)]

    def fail(stream: str, batch: list[Any]) -> int:
        raise OSError("the database is busy")

    follower._process = fail  # type: ignore[method-assign]
    assert asyncio.run(follower._drain(cast(Any, _Consumer(messages)), "COMMONS_EVENTS")) == 0
    assert not any(m.acked for m in messages)
    assert all(m.naked for m in messages)
