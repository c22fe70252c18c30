"""Ingest quotas of a full node (issue 20 item 4; docs/federation.md, "Quotas").

Every message a node fetches is charged, before it is verified, to two pairs of token
buckets: its stream's (per subject family: ``events.*``, ``checkpoints.*``, …) and its
peer's (the NATS server the follower reads, shared by all its streams), each one bucket of
messages and one of bytes.  A bucket holds at most ``burst`` seconds of its rate and refills
continuously.  A fetched batch is admitted from its first message for as long as all four
buckets have room; the rest is not processed now (``nak`` with a delay, so JetStream
delivers it again in order), and that stream's consumer backs off exponentially —
``backoff_base`` × 2^(strikes − 1), at most ``backoff_max`` — while the follower's other
streams, and other followers, go on.  An admitted batch clears the strikes.

A bucket never holds less than one message of the largest size (``MAX_MESSAGE_BYTES``), so
a message always passes eventually; an oversize one is then dropped by verification
(reason ``oversize``), as unsigned and malformed ones are (``signature``, ``schema``).

The clock is injected (monotonic seconds): tests drive it by counts, never by wall time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from credit_commons.core.settings import Settings
from credit_commons.federation import MAX_MESSAGE_BYTES

__all__ = ["Quotas", "TokenBucket"]


class TokenBucket:
    """``rate`` tokens a second, at most ``capacity`` held; starts full."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("a bucket's rate and capacity are positive")
        self.rate, self.capacity = rate, capacity
        self.tokens, self.stamp = capacity, now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = max(self.stamp, now)


@dataclass
class _Pair:
    messages: TokenBucket
    octets: TokenBucket


@dataclass
class Quotas:
    """The node's ingest quotas (``COMMONS_NODE_QUOTAS``; defaults in ``NodeQuotaSettings``)."""

    stream_messages: float = 20_000.0
    stream_bytes: float = 32_000_000.0
    peer_messages: float = 50_000.0
    peer_bytes: float = 64_000_000.0
    burst: float = 2.0
    backoff_base: float = 0.25
    backoff_max: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Pair] = field(default_factory=dict, init=False, repr=False)
    _strikes: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        rates = (self.stream_messages, self.stream_bytes, self.peer_messages, self.peer_bytes)
        if min(rates) <= 0 or self.burst <= 0 or not 0 < self.backoff_base <= self.backoff_max:
            raise ValueError("quotas, burst and back-off are positive (base at most max)")

    @classmethod
    def from_settings(cls, settings: Settings) -> Quotas:
        """The quotas of ``COMMONS_NODE_QUOTAS``."""
        return cls(**settings.node_quotas.model_dump())

    def _pair(self, key: str, messages: float, octets: float, now: float) -> _Pair:
        pair = self._buckets.get(key)
        if pair is None:
            pair = _Pair(
                TokenBucket(messages, max(1.0, messages * self.burst), now),
                TokenBucket(octets, max(float(MAX_MESSAGE_BYTES), octets * self.burst), now),
            )
            self._buckets[key] = pair
        return pair

    def admit(self, stream: str, sizes: Sequence[int]) -> int:
        """How many of a batch's messages (their ``sizes`` in bytes, in order) pass now;
        their tokens are taken from the stream's and the peer's buckets."""
        with self._lock:
            now = self.clock()
            buckets = (
                self._pair(f"stream:{stream}", self.stream_messages, self.stream_bytes, now),
                self._pair("peer", self.peer_messages, self.peer_bytes, now),
            )
            for pair in buckets:
                pair.messages.refill(now)
                pair.octets.refill(now)
            admitted = 0
            for size in sizes:
                if any(p.messages.tokens < 1 or p.octets.tokens < size for p in buckets):
                    break
                for pair in buckets:
                    pair.messages.tokens -= 1
                    pair.octets.tokens -= size
                admitted += 1
            return admitted

    def backoff(self, stream: str) -> float:
        """One more strike for ``stream``: the seconds its consumer waits."""
        with self._lock:
            strikes = self._strikes.get(stream, 0) + 1
            self._strikes[stream] = strikes
            return float(min(self.backoff_max, self.backoff_base * 2 ** min(strikes - 1, 30)))

    def clear(self, stream: str) -> None:
        """An admitted batch: ``stream``'s strikes start again."""
        with self._lock:
            self._strikes.pop(stream, None)
