"""``Attached``: one value per owner object, kept by the layer the value belongs to.

The runtime is built low in the layering (below the log and every domain), so it cannot name
the types of what those layers keep for the life of a runtime — the log's identity, the
catalogue's parsed types, the gateway's rate limiter.  Each of those layers declares its own
``Attached[Runtime, T]`` instead: typed, made on first use by the layer's own factory, and
forgotten when the runtime is (the owner is held by a weak reference).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Attached"]

Owner = TypeVar("Owner")
V = TypeVar("V")


class Attached(Generic[Owner, V]):
    """A value of type ``V`` per owner of type ``Owner``, made by ``make(owner)`` on first use
    (once, even when two threads ask at the same moment).  Owners are compared by identity
    (they must be hashable and weakly referenceable)."""

    def __init__(self, make: Callable[[Owner], V]) -> None:
        self._make = make
        self._values: weakref.WeakKeyDictionary[Owner, V] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, owner: Owner) -> V:
        """The owner's value, made now if it has none."""
        value = self._values.get(owner)
        if value is not None:
            return value
        with self._lock:
            value = self._values.get(owner)
            if value is None:
                value = self._make(owner)
                self._values[owner] = value
            return value

    def peek(self, owner: Owner) -> V | None:
        """The owner's value if it has one (nothing is made)."""
        return self._values.get(owner)

    def set(self, owner: Owner, value: V) -> None:
        """Give the owner this value (a test installs its own double, for instance)."""
        with self._lock:
            self._values[owner] = value

    def pop(self, owner: Owner) -> V | None:
        """Forget the owner's value; it, or None."""
        with self._lock:
            return self._values.pop(owner, None)
