"""The one in-process cache type: a thread-safe LRU bounded in entries AND in bytes.

Every cache whose keys come from input (tokens, JWKs, issuers, status-list URIs, subjects)
must be bounded, or a stranger can grow the process until it is killed.  Each cache gives
a ``size`` function that estimates the bytes an entry holds (its key and value); the cache
evicts least recently used entries until both bounds hold again, and an entry larger than
the whole byte budget is not cached at all.  An optional time to live drops entries older
than ``ttl`` seconds when they are next looked at (or evicted).

Hand-written rather than ``cachetools``: its caches bound one weight only (entries *or* a
``getsizeof`` total, not both), are not thread-safe (every call would need an outer lock
anyway) and their TTL variant keeps its own timer; the two bounds, the lock and the TTL are
what this small class is.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, overload

from credit_commons.core.errors import ConfigurationError

__all__ = ["BoundedCache", "text_size"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")

ENTRY_OVERHEAD = 100
"""Bytes charged per entry on top of what ``size`` says (the dict slot, tuple and object
headers): an estimate, so that a cache of tiny entries is bounded by entries long before
its byte budget would be reached."""


def text_size(*parts: str | bytes | None) -> int:
    """The bytes of some strings or byte strings (a string's length, a fair estimate for
    the ASCII that tokens, ids and JSON mostly are)."""
    return sum(len(part) for part in parts if part is not None)


class BoundedCache(Generic[K, V]):
    """A least-recently-used map holding at most ``max_entries`` entries and ``max_bytes``
    bytes (as ``size(key, value)`` + :data:`ENTRY_OVERHEAD` estimates them), optionally
    forgetting entries older than ``ttl`` seconds (with ``ttl=0`` nothing is ever found,
    which turns caching off).  Safe to share between threads.

    Raises :class:`ConfigurationError` when built with a bound below one.
    """

    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        size: Callable[[K, V], int],
        ttl: float | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1 or (ttl is not None and ttl < 0):
            raise ConfigurationError("a cache needs positive bounds and a time to live >= 0")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._size = size
        self._ttl = ttl
        self._now = now
        # key -> (value, its charged bytes, when it was stored)
        self._items: OrderedDict[K, tuple[V, int, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        """The bytes the entries are charged, in total (never more than ``max_bytes``)."""
        return self._bytes

    @overload
    def get(self, key: K) -> V | None: ...

    @overload
    def get(self, key: K, default: D) -> V | D: ...

    def get(self, key: K, default: object = None) -> object:
        """The value cached under ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return default
            if self._ttl is not None and self._now() - item[2] >= self._ttl:
                self._drop(key)
                return default
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: K, value: V) -> None:
        """Cache ``value`` under ``key``, evicting the least recently used entries until
        both bounds hold; a value bigger than the whole byte budget is not cached."""
        charged = self._size(key, value) + ENTRY_OVERHEAD
        with self._lock:
            if key in self._items:
                self._drop(key)
            if charged > self.max_bytes:
                return
            self._items[key] = (value, charged, self._now())
            self._bytes += charged
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                oldest = next(iter(self._items))
                self._drop(oldest)

    def pop(self, key: K) -> V | None:
        """Forget ``key``; its value, or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._drop(key)
            return item[0]

    def pop_where(self, predicate: Callable[[K], bool]) -> int:
        """Forget every key for which ``predicate`` is true; how many were forgotten."""
        with self._lock:
            doomed = [key for key in self._items if predicate(key)]
            for key in doomed:
                self._drop(key)
            return len(doomed)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def _drop(self, key: K) -> None:
        # The caller holds the lock.
        _value, charged, _at = self._items.pop(key)
        self._bytes -= charged
