"""Random, non-sequential status-list indexes.

Both status-list specifications recommend random indexes (W3C Bitstring Status List §2.1
``statusListIndex``: "Implementations SHOULD assign indexes randomly"), so that an index
says nothing about the order in which credentials were issued.  :func:`allocate_random_index`
picks one free index; :func:`allocate_random_indexes` picks many for a batch of issuances,
marking them in the bitmap as it goes (one pass over the bitmap for the whole batch).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Final

from credit_commons.core.errors import ConfigurationError
from credit_commons.issuer.errors import StatusListFull, StatusListInvalid

__all__ = ["allocate_random_index", "allocate_random_indexes"]

#: Draws tried by rejection sampling before falling back to an exact scan.  With at least
#: 1/16 of the list free, 64 draws all landing on used slots has probability below 2e-2;
#: the fallback keeps a nearly full list correct rather than slow.
_REJECTION_DRAWS: Final = 64


def _bitmap_is_used(bitmap: bytes | bytearray, index: int) -> bool:
    return bool(bitmap[index >> 3] >> (index & 7) & 1)


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise StatusListInvalid("status list size must be a positive integer")


def _used_in_bitmap(size: int, bitmap: bytes | bytearray) -> int:
    nbytes = -(-size // 8)
    if len(bitmap) < nbytes:
        raise StatusListInvalid("allocation bitmap is shorter than the status list")
    bits = int.from_bytes(bitmap[:nbytes], "little") & ((1 << size) - 1)
    return bits.bit_count()


def _drawer(randbelow: Callable[[int], int]) -> Callable[[int], int]:
    def draw(n: int) -> int:
        value = randbelow(n)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
            raise ConfigurationError("random source returned a value outside its range")
        return value

    return draw


def _pick(size: int, free: int, is_used: Callable[[int], bool], draw: Callable[[int], int]) -> int:
    # Rejection sampling: a uniform draw, kept only if free, is uniform over the free set.
    for _ in range(_REJECTION_DRAWS):
        candidate = draw(size)
        if not is_used(candidate):
            return candidate
    # Exact fallback: the k-th free index for a uniform k is uniform over the free set too.
    k = draw(free)
    for index in range(size):
        if not is_used(index):
            if k == 0:
                return index
            k -= 1
    raise AssertionError("unreachable: free count and scan disagree")  # pragma: no cover


def allocate_random_index(
    size: int,
    used: AbstractSet[int] | bytes | bytearray,
    *,
    randbelow: Callable[[int], int] = secrets.randbelow,
) -> int:
    """Choose an index in ``range(size)`` that is not in ``used``, uniformly at random.

    ``used`` is either a set of allocated indexes (members outside the range are ignored) or
    a bitmap in which bit ``i`` (least significant bit first within each byte, as in a 1-bit
    Token Status List) is set when index ``i`` is allocated.  ``randbelow(n)`` must return an
    integer in ``range(n)``; it defaults to :func:`secrets.randbelow` and is a parameter so
    tests can reproduce draws.

    Random draws are rejected while they hit allocated indexes; after a bounded number of
    attempts the k-th free index, for a uniform k, is taken instead.  Either way each free
    index is equally likely.

    Raises :class:`StatusListFull` when no index is free, :class:`StatusListInvalid` for a
    bad ``size`` or a bitmap shorter than ``size`` bits, and :class:`ConfigurationError` if
    ``randbelow`` returns a value outside its range.
    """
    _check_size(size)
    is_used: Callable[[int], bool]
    if isinstance(used, bytes | bytearray):
        bitmap = bytes(used)
        used_count = _used_in_bitmap(size, bitmap)

        def is_used(index: int) -> bool:
            return _bitmap_is_used(bitmap, index)

    else:
        used_count = sum(1 for index in used if isinstance(index, int) and 0 <= index < size)
        is_used = used.__contains__
    free = size - used_count
    if free <= 0:
        raise StatusListFull("every index of the status list is allocated")
    return _pick(size, free, is_used, _drawer(randbelow))


def allocate_random_indexes(
    size: int,
    bitmap: bytearray,
    count: int,
    *,
    randbelow: Callable[[int], int] = secrets.randbelow,
) -> list[int]:
    """Choose ``count`` distinct free indexes of ``bitmap`` (as :func:`allocate_random_index`
    reads it), each uniformly at random among those still free, and mark them in ``bitmap``.

    Raises :class:`StatusListFull` when fewer than ``count`` indexes are free (``bitmap``
    is then left unchanged), and what :func:`allocate_random_index` raises.
    """
    _check_size(size)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConfigurationError("count must be a non-negative integer")
    free = size - _used_in_bitmap(size, bitmap)
    if count > free:
        raise StatusListFull(f"only {free} indexes of the status list are free")
    draw = _drawer(randbelow)

    def is_used(index: int) -> bool:
        return _bitmap_is_used(bitmap, index)

    chosen = []
    for _ in range(count):
        index = _pick(size, free, is_used, draw)
        bitmap[index >> 3] |= 1 << (index & 7)
        free -= 1
        chosen.append(index)
    return chosen
