"""Hash tiles of a transparency log (C2SP tlog-tiles@v0.1.0): the tile arithmetic, a tile's
stored upper levels, and the bounded cache of full tiles.

Level-0 tile ``N`` holds the leaf hashes ``256·N … 256·N+255``; a hash in a level-``L`` tile
(L ≥ 1) is the Merkle Tree Hash (RFC 9162 §2.1.1) of a *full* tile at level ``L-1``.  So any
complete aligned subtree of ``2^h`` leaves is the MTH of ``2^(h mod 8)`` consecutive hashes of
one tile at level ``h // 8``.  Full tiles never change, so they are cached in memory
(:class:`TileCache`, the process's one, is held by the runtime); the database side — storing
tiles and serving proofs from them — is ``ledger/tiles.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from credit_commons.core.cache import BoundedCache, text_size

__all__ = [
    "HASH_SIZE",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Tile",
    "TileCache",
    "expand_tile",
    "subtree_mth",
    "upper_levels",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
HASH_SIZE = 32
_H = HASH_SIZE


def subtree_mth(hashes: bytes) -> bytes:
    """The MTH of a power-of-two run of concatenated 32-byte node hashes (RFC 9162 §2.1.1)."""
    level = [hashes[i : i + _H] for i in range(0, len(hashes), _H)]
    sha = hashlib.sha256
    while len(level) > 1:
        level = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


def expand_tile(data: bytes) -> list[bytes]:
    """All 9 levels inside a full tile: ``levels[h]`` holds its 2^(8-h) nodes of height h."""
    levels = [data]
    sha = hashlib.sha256
    while len(levels[-1]) > _H:
        below = levels[-1]
        levels.append(
            b"".join(
                sha(b"\x01" + below[i : i + 2 * _H]).digest() for i in range(0, len(below), 2 * _H)
            )
        )
    return levels


# A full tile also stores its internal nodes of heights 4..7 (16 + 8 + 4 + 2 hashes, 960
# bytes), so any node inside it is either stored or the MTH of at most 8 hashes (7 hash
# operations) — instead of up to 255 operations when a tile is read cold.
_UPPER_FIRST, _UPPER_LAST = 4, 7
_UPPER_OFFSETS = {h: sum(TILE_WIDTH >> k for k in range(_UPPER_FIRST, h)) for h in range(4, 8)}


@dataclass(frozen=True, slots=True)
class Tile:
    """A stored tile: its hashes and, for a full tile, its upper levels (heights 4..7)."""

    raw: bytes
    upper: bytes | None

    def node(self, height: int, offset: int) -> bytes:
        """The node of ``height`` covering hashes ``offset…offset+2^height`` of this tile."""
        if self.upper is not None and height >= _UPPER_FIRST:
            start = (_UPPER_OFFSETS[height] + (offset >> height)) * _H
            return self.upper[start : start + _H]
        chunk = self.raw[offset * _H : (offset + (1 << height)) * _H]
        return chunk if height == 0 else subtree_mth(chunk)


def upper_levels(data: bytes) -> tuple[bytes, bytes]:
    """For a full tile: its stored upper levels (heights 4..7) and its root (height 8)."""
    levels = expand_tile(data)
    return b"".join(levels[_UPPER_FIRST : _UPPER_LAST + 1]), levels[TILE_HEIGHT]


def _tile_size(_key: tuple[int, int], tile: Tile) -> int:
    return 16 + text_size(tile.raw, tile.upper)


class TileCache(BoundedCache[tuple[int, int], Tile]):
    """The :class:`BoundedCache` of *full* tiles, keyed by (level, index): at most
    ``capacity`` tiles and ``max_bytes`` bytes (a full tile is 8 KiB of hashes, plus 960
    bytes of stored upper levels).  Safe across threads.

    Full tiles never change, so a cached tile answers any subtree inside it; a partial tile
    (still growing) is never cached.
    """

    def __init__(self, capacity: int = 4096, max_bytes: int = 40 * 1024 * 1024) -> None:
        super().__init__(max_entries=capacity, max_bytes=max_bytes, size=_tile_size)

    def put(self, key: tuple[int, int], value: Tile) -> None:
        """Cache a full tile (a partial one is not cached)."""
        if len(value.raw) != TILE_WIDTH * _H:
            return
        super().put(key, value)
