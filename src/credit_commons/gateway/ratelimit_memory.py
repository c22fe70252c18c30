"""The rate limiter's in-process counters: a ``limits`` storage for the moving-window and
fixed-window strategies that does its bookkeeping in the request that counts, without a
thread of its own.

``limits``' own ``MemoryStorage`` expires entries on a ``threading.Timer`` of 10 ms that it
starts again from the next count once it has run: a server answering a request every few
milliseconds started a thread per request (measured: about a tenth of the CPU of a
``/healthz``).  It also keeps a moving window as a list, newest first, that every count
inserts at the front of (a copy of the whole window per request).  Here:

* a moving window is the times of its counted requests, oldest first (a deque): a count
  drops the times that left the window from the left and appends at the right, and a
  window never holds more times than its limit (a refused request adds none);
* a fixed window is a count and the instant it ends;
* keys are kept per window length in the order they were last counted (fixed windows: the
  order they started), so the ones whose window has passed are at the front and are
  dropped there as the next count goes by: each count does a bounded amount of work, and
  no key outlives its window by more than the time until the next count.

Time comes from ``now`` (seconds since the epoch), so tests move it instead of sleeping.
Every method holds one lock: the event loop counts per address and per credential while a
worker thread counts a verified lender client.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from limits.storage import MovingWindowSupport, Storage

__all__ = ["ProcessMemoryStorage"]


class ProcessMemoryStorage(Storage, MovingWindowSupport):
    """Moving-window and fixed-window counters in this process's memory (see the module's
    docstring).  Raises nothing of its own; ``limits`` wraps a ``ValueError`` in
    ``StorageError`` when ``wrap_exceptions`` is set."""

    STORAGE_SCHEME = None  # built directly by the limiter, never named in a storage URI

    def __init__(self, *, now: Callable[[], float] = time.time, wrap_exceptions: bool = False):
        super().__init__(None, wrap_exceptions=wrap_exceptions)
        self._now = now
        self._lock = threading.Lock()
        # Per window length (s): key -> times counted in the window, oldest first; the
        # keys in the order they were last counted.
        self._moving: dict[int, OrderedDict[str, deque[float]]] = {}
        # Per window length (s): key -> [count, end of the window]; the keys in the order
        # their windows started (so ended).
        self._fixed: dict[float, OrderedDict[str, list[float]]] = {}

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        """What ``limits`` wraps as a storage error."""
        return ValueError

    # -- moving window -----------------------------------------------------------------

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Count ``amount`` requests of ``key`` if its window of ``expiry`` seconds then
        holds at most ``limit``; whether they were counted."""
        if amount > limit:
            return False
        now = self._now()
        with self._lock:
            keys = self._moving.setdefault(expiry, OrderedDict())
            self._sweep_moving(keys, now - expiry)
            times = keys.get(key)
            if times is None:
                times = keys[key] = deque()
            else:
                keys.move_to_end(key)
                _drop_older(times, now - expiry)
            if len(times) + amount > limit:
                return False
            times.extend([now] * amount)
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The time of the oldest request of ``key`` still in its window of ``expiry``
        seconds (now when there is none) and how many requests the window holds."""
        now = self._now()
        with self._lock:
            keys = self._moving.get(expiry)
            times = keys.get(key) if keys is not None else None
            if times:
                _drop_older(times, now - expiry)
            if not times:
                return now, 0
            return times[0], len(times)

    @staticmethod
    def _sweep_moving(keys: OrderedDict[str, deque[float]], horizon: float) -> None:
        # The least recently counted keys first: drop those with nothing left in the window.
        while keys:
            times = next(iter(keys.values()))
            if times and times[-1] > horizon:
                return
            keys.popitem(last=False)

    # -- fixed window --------------------------------------------------------------------

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount`` to ``key``'s count, starting a window of ``expiry`` seconds if
        none is running; the count."""
        now = self._now()
        with self._lock:
            keys = self._fixed.setdefault(expiry, OrderedDict())
            while keys:  # the windows that started first end first
                first = next(iter(keys.values()))
                if first[1] > now:
                    break
                keys.popitem(last=False)
            window = keys.get(key)
            if window is None:
                keys[key] = window = [0, now + expiry]
            window[0] += amount
            return int(window[0])

    def _window(self, key: str, now: float) -> list[float] | None:
        for keys in self._fixed.values():
            window = keys.get(key)
            if window is not None and window[1] > now:
                return window
        return None

    def get(self, key: str) -> int:
        """``key``'s count in its running fixed window (0 when none runs)."""
        now = self._now()
        with self._lock:
            window = self._window(key, now)
            return int(window[0]) if window is not None else 0

    def get_expiry(self, key: str) -> float:
        """When ``key``'s running fixed window ends (now when none runs)."""
        now = self._now()
        with self._lock:
            window = self._window(key, now)
            return window[1] if window is not None else now

    # -- the rest of the storage interface -------------------------------------------------

    def check(self) -> bool:
        """Always healthy: it is this process's memory."""
        return True

    def clear(self, key: str) -> None:
        """Forget ``key``'s counts."""
        with self._lock:
            for moving in self._moving.values():
                moving.pop(key, None)
            for fixed in self._fixed.values():
                fixed.pop(key, None)

    def reset(self) -> int | None:
        """Forget every count; how many keys there were."""
        with self._lock:
            count = sum(map(len, self._moving.values())) + sum(map(len, self._fixed.values()))
            self._moving.clear()
            self._fixed.clear()
            return count

    def keys(self) -> int:
        """How many keys are held (what the sweeping bounds)."""
        with self._lock:
            return sum(map(len, self._moving.values())) + sum(map(len, self._fixed.values()))


def _drop_older(times: deque[float], horizon: float) -> None:
    # A request counts while it is less than the window's length old.
    while times and times[0] <= horizon:
        times.popleft()
