"""Sortable identifiers.

An id is a ULID-shaped value: 48 bits of milliseconds since the Unix epoch followed by 80
random bits, written as 26 Crockford base32 characters, optionally behind a short type
prefix (``evt_01J…``).  Ids sort by creation time as plain strings, which keeps B-tree
inserts append-mostly on both SQLite and PostgreSQL.  Within one millisecond, ids from one
generator are strictly increasing (the random part is incremented), as the ULID spec asks.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable

from credit_commons.core.clock import Clock, SystemClock
from credit_commons.core.errors import ValidationError

__all__ = ["IdGenerator", "is_valid_id", "new_id"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# fullmatch, not match with "$": "$" also matches before a final newline.
_PREFIX = re.compile(r"[a-z][a-z0-9]{0,7}")
_ID = re.compile(r"(?:[a-z][a-z0-9]{0,7}_)?[0-7][0-9A-HJKMNP-TV-Z]{25}")
_RANDOM_BITS = 80


# Every pair of Crockford digits, by the 10-bit value it writes.
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)


def _encode(value: int) -> str:
    # 26 Crockford digits of a 130-bit value, two digits (10 bits) at a time.
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in range(120, -10, -10)])


def _encode_reference(value: int) -> str:
    """Digit by digit (what tests compare :func:`_encode` with)."""
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class IdGenerator:
    """Makes monotonic sortable ids from a clock and a source of random bits."""

    def __init__(
        self,
        clock: Clock | None = None,
        randbits: Callable[[int], int] = secrets.randbits,
    ) -> None:
        self._clock = clock or SystemClock()
        self._randbits = randbits
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_rand = 0

    def new(self, prefix: str | None = None) -> str:
        """A new id, optionally prefixed ``<prefix>_``.

        Raises :class:`ValidationError` if the prefix is not 1–8 lower-case alphanumerics.
        """
        if prefix is not None and not (isinstance(prefix, str) and _PREFIX.fullmatch(prefix)):
            raise ValidationError("id prefix must be 1-8 lower-case letters or digits")
        ms = int(self._clock.now().timestamp() * 1000)
        with self._lock:
            if ms <= self._last_ms:
                # Same (or an earlier) millisecond: keep ids strictly increasing.
                ms = self._last_ms
                rand = self._last_rand + 1
                if rand >> _RANDOM_BITS:
                    ms += 1
                    rand = self._randbits(_RANDOM_BITS)
            else:
                rand = self._randbits(_RANDOM_BITS)
            self._last_ms, self._last_rand = ms, rand
        body = _encode((ms << _RANDOM_BITS) | rand)
        return f"{prefix}_{body}" if prefix else body


_default = IdGenerator()


def new_id(prefix: str | None = None) -> str:
    """A new id from the process-wide generator (system clock, ``secrets``)."""
    return _default.new(prefix)


def is_valid_id(value: str) -> bool:
    """Whether ``value`` has the shape of an id made by :class:`IdGenerator`."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None
