"""Moving a stream's cursor past messages the stream no longer holds (docs/federation.md,
"Missing inputs"; ``commons node repair --peer``).

The follower stores a stream's messages in stream order and waits at a gap — a sequence
past the next one — for the missing message (node/follower.py), since a message that is
only late (a redelivery after a transient failure) comes again.  One deleted from the
stream, or purged with the start of it, never comes: the stream stalls for good.
:func:`skip_lost_gaps` asks the stream itself, message by message, whether the sequences
after the node's cursor still exist (``STREAM.MSG.GET``), and moves the cursor past
those that do not — never past one that does, so a late message is still waited for.

Only streams whose completeness the node checks another way are skipped: the events and
members streams (the scorer names every leaf whose message is missing, and
:func:`~credit_commons.node.repair.repair_inputs` fetches it from the platform and checks
it against its leaf) and the checkpoints stream (a later checkpoint's tree covers an
earlier one's).  A gap in the revocations or rules streams is reported, not skipped: a
lost revocation or rule set would go unnoticed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

import nats
from nats.js.errors import NotFoundError

from credit_commons.core.db import transaction
from credit_commons.node import store
from credit_commons.node.mirror import Mirror
from credit_commons.node.scoring_inputs import EVENTS_STREAM, MEMBERS_STREAM

__all__ = ["SKIPPABLE", "StreamGap", "skip_lost_gaps"]

SKIPPABLE: Final = (EVENTS_STREAM, MEMBERS_STREAM, "COMMONS_CHECKPOINTS")
"""The streams whose lost messages the node may skip (see the module)."""


@dataclass(frozen=True)
class StreamGap:
    """Sequences ``after + 1 … to`` of ``stream`` are gone from the stream: ``skipped``
    says whether the node's cursor was moved to ``to``."""

    stream: str
    after: int
    to: int
    skipped: bool


def skip_lost_gaps(
    mirror: Mirror,
    url: str,
    *,
    streams: tuple[str, ...] = SKIPPABLE,
    max_checks: int = 10_000,
    timeout: float = 5.0,
) -> list[StreamGap]:
    """For each of ``streams`` whose cursor (``seq.<stream>``) stands before messages the
    stream at ``url`` no longer holds, the gap; moved past for the :data:`SKIPPABLE`
    streams (counted ``gaps.skipped.<stream>``), reported for the others.  At most
    ``max_checks`` sequences are asked for per stream.  Raises NATS's errors when the
    server cannot be reached."""
    return asyncio.run(_skip(mirror, url, streams, max_checks, timeout))


async def _skip(
    mirror: Mirror, url: str, streams: tuple[str, ...], max_checks: int, timeout: float
) -> list[StreamGap]:
    nc = await nats.connect(url, connect_timeout=timeout, allow_reconnect=False)
    try:
        jsm = nc.jsm()
        out = []
        for stream in streams:
            name = f"seq.{stream}"
            with transaction(mirror.sessions) as session:
                top = store.counter(session, name)
            if top == 0:
                # Before its first message the follower expects the stream's first
                # sequence as it was when it bound its consumer, so a purged start is no
                # gap to it (one purged in the moment after: its next start reads again).
                continue
            try:
                state = (await jsm.stream_info(stream)).state
            except NotFoundError:
                continue
            first, last = int(state.first_seq or 0), int(state.last_seq or 0)
            gone = max(top, first - 1)  # a purged start is gone as a whole
            for _ in range(max_checks):
                if gone >= last:
                    break
                try:
                    await jsm.get_msg(stream, gone + 1)
                    break
                except NotFoundError:
                    gone += 1
            if gone > top:
                out.append(_move(mirror, stream, top, gone))
        return out
    finally:
        await nc.close()


def _move(mirror: Mirror, stream: str, top: int, gone: int) -> StreamGap:
    if stream not in SKIPPABLE:
        return StreamGap(stream, top, gone, skipped=False)
    name = f"seq.{stream}"
    with transaction(mirror.sessions) as session:
        if store.counter(session, name) != top:  # the follower moved meanwhile
            return StreamGap(stream, top, gone, skipped=False)
        store.set_counter(session, name, gone)
        store.count(session, f"gaps.skipped.{stream}", gone - top)
    return StreamGap(stream, top, gone, skipped=True)
