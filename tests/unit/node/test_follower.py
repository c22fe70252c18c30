"""The follower's fetch size: ``batch`` following live, ``4 × batch`` (the consumer's
``max_ack_pending``) while the last fetch of that stream left at least that many
pending — a catch-up, where a larger unit of work costs less CPU an event."""

from __future__ import annotations

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
