"""Commitments to a credential's provable claims: ``C = Poseidon(value, salt)``.

The hash is :func:`credit_commons.zk.poseidon.hash2` (@noble/curves' Poseidon over the
BLS12-381 scalar field, run in the zk Node worker); this module fixes the bounds and draws the
salt.  The issuer signs ``C`` in the credential; the holder keeps ``value`` and ``salt`` and
proves statements about ``value`` against ``C`` without showing either.

- ``value``: a non-negative integer below ``2**VALUE_BITS`` (64 bits: scores, amounts in the
  smallest currency unit, day numbers as ``date.toordinal()``).  The circuits range-check it
  to the same width, which their comparators need.
- ``salt``: ``SALT_BITS`` (248) random bits known only to the holder, so that ``C`` of a
  low-entropy value (a score, a birth date) cannot be found by trying values.
- ``C`` travels in JSON as a canonical decimal string (:mod:`credit_commons.zk.field`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from credit_commons.zk.errors import FieldElementInvalid
from credit_commons.zk.node import NodeWorker
from credit_commons.zk.poseidon import hash2

__all__ = ["SALT_BITS", "VALUE_BITS", "commit", "new_salt", "require_salt", "require_value"]

VALUE_BITS = 64
"""Committed values are integers in ``[0, 2**64)``."""

SALT_BITS = 248
"""Salts are integers in ``[0, 2**248)``, drawn uniformly."""


def require_value(value: object) -> int:
    """Return ``value`` when it is an ``int`` in ``[0, 2**VALUE_BITS)``.

    Raises :class:`FieldElementInvalid` otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**VALUE_BITS:
        raise FieldElementInvalid(f"a committed value is an integer in [0, 2^{VALUE_BITS})")
    return value


def require_salt(salt: object) -> int:
    """Return ``salt`` when it is an ``int`` in ``[0, 2**SALT_BITS)``.

    Raises :class:`FieldElementInvalid` otherwise.
    """
    if isinstance(salt, bool) or not isinstance(salt, int) or not 0 <= salt < 2**SALT_BITS:
        raise FieldElementInvalid(f"a salt is an integer in [0, 2^{SALT_BITS})")
    return salt


def new_salt(randbits: Callable[[int], int] = secrets.randbits) -> int:
    """A fresh salt of ``SALT_BITS`` bits from ``randbits`` (the OS CSPRNG by default)."""
    return require_salt(randbits(SALT_BITS))


def commit(value: int, salt: int, *, worker: NodeWorker | None = None) -> int:
    """``C = Poseidon(value, salt)``, a field element.

    Raises :class:`FieldElementInvalid` for a value or salt out of bounds and
    :class:`NodeUnavailable` when the Node tooling is missing.
    """
    return hash2(require_value(value), require_salt(salt), worker=worker)
