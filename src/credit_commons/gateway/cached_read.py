"""A value read again only when the last read is older than a time to live — what the
``/metrics`` collectors keep between scrapes (``gateway/monitoring.py``,
``gateway/node_metrics.py``), so scrapes in quick succession cost one read."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["CachedRead"]

T = TypeVar("T")


class CachedRead(Generic[T]):
    """``read()``'s value, called again when the last call is ``ttl`` seconds old or older
    (by the monotonic clock); one caller reads while the others wait for its value."""

    def __init__(self, read: Callable[[], T], ttl: float) -> None:
        self.read, self.ttl = read, ttl
        self._lock = threading.Lock()
        self._read_at: float | None = None  # None: never read
        self._value: T

    def get(self) -> T:
        """The value, read again when the last read is older than ``ttl``."""
        with self._lock:
            now = time.monotonic()
            if self._read_at is None or now - self._read_at >= self.ttl:
                self._value, self._read_at = self.read(), now
            return self._value
