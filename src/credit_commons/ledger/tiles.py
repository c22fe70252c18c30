"""Hash tiles (C2SP tlog-tiles@v0.1.0) in the database, and a proof hash source over them.

Level-0 tile ``N`` holds the leaf hashes ``256·N … 256·N+255``; a hash in a level-``L`` tile
(L ≥ 1) is the Merkle Tree Hash of a *full* tile at level ``L-1``.  So tile level ``L``
holds the complete subtrees of ``2^(8L)`` leaves, and any complete aligned subtree of
``2^h`` leaves is the MTH of ``2^(h mod 8)`` consecutive hashes of one tile at level
``h // 8``: at most 255 hash operations over one stored row.  A proof at any size reads
O(log₂₅₆ n) rows.  Full tiles never change and are cached in memory; the one partial
tile per level is rewritten as it grows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Table, and_, delete, insert, or_, select
from sqlalchemy.orm import Session

from credit_commons.core.cache import BoundedCache, text_size
from credit_commons.ledger.errors import TreeRangeInvalid
from credit_commons.ledger.models import LogTileRow
from credit_commons.ledger.rfc6962 import NodeId

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileCache",
    "TileHashSource",
    "append_leaf_hashes",
    "subtree_mth",
    "upper_levels",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
_H = 32
_tiles: Table = LogTileRow.__table__  # type: ignore[assignment]


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
class _Tile:
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


class TileCache:
    """An LRU cache of *full* tiles, keyed by (level, index); safe across threads; at most
    ``capacity`` tiles and ``max_bytes`` bytes (a full tile is 8 KiB of hashes, plus 480
    bytes of stored upper levels).

    Full tiles never change, so a cached tile answers any subtree inside it.
    """

    def __init__(self, capacity: int = 4096, max_bytes: int = 40 * 1024 * 1024) -> None:
        self.entries: BoundedCache[tuple[int, int], _Tile] = BoundedCache(
            max_entries=capacity,
            max_bytes=max_bytes,
            size=lambda _key, tile: 16 + text_size(tile.raw, tile.upper),
        )

    def get(self, key: tuple[int, int]) -> _Tile | None:
        """The cached tile, or None."""
        return self.entries.get(key)

    def put(self, key: tuple[int, int], tile: _Tile) -> None:
        """Cache a full tile (partial tiles still grow and are never cached)."""
        if len(tile.raw) != TILE_WIDTH * _H:
            return
        self.entries.put(key, tile)


class TileHashSource:
    """Serves complete subtree hashes from stored tiles (the rfc6962 ``HashSource``)."""

    def __init__(self, session: Session, cache: TileCache | None = None) -> None:
        self._session = session
        self._cache = cache

    def _load(self, keys: set[tuple[int, int]]) -> dict[tuple[int, int], _Tile]:
        found: dict[tuple[int, int], _Tile] = {}
        missing = []
        for key in keys:
            cached = self._cache.get(key) if self._cache else None
            if cached is None:
                missing.append(key)
            else:
                found[key] = cached
        if missing:
            # An OR of key equalities, not a row-value IN: SQLite answers the IN form with a
            # full scan of the tile table, the OR form with one index probe per tile.
            rows = self._session.execute(
                select(_tiles.c.level, _tiles.c.idx, _tiles.c.hashes, _tiles.c.upper).where(
                    or_(*(and_(_tiles.c.level == lv, _tiles.c.idx == ix) for lv, ix in missing))
                )
            )
            for level, idx, data, upper in rows:
                tile = _Tile(bytes(data), bytes(upper) if upper is not None else None)
                if self._cache:
                    self._cache.put((level, idx), tile)
                found[(level, idx)] = tile
        return found

    def tiles(self, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored tiles' hashes for ``keys`` (missing ones are absent), in one query."""
        return {key: tile.raw for key, tile in self._load(keys).items()}

    def subtree_roots(self, nodes: Sequence[NodeId], /) -> list[bytes]:
        """The MTH of each complete subtree in ``nodes``; raises ``TreeRangeInvalid`` for
        one the stored tiles do not hold completely."""
        spans = []
        for node in nodes:
            tile_level, rest = divmod(node.level, TILE_HEIGHT)
            first = node.index << rest  # position among the tile level's hashes
            tile_index, offset = divmod(first, TILE_WIDTH)
            spans.append(((tile_level, tile_index), offset, rest))
        tiles = self._load({key for key, _, _ in spans})
        out = []
        for key, offset, rest in spans:
            tile = tiles.get(key)
            if tile is None or len(tile.raw) < (offset + (1 << rest)) * _H:
                raise TreeRangeInvalid("the log does not hold that subtree yet")
            out.append(tile.node(rest, offset))
        return out


def append_leaf_hashes(session: Session, start: int, leaf_hashes: Sequence[bytes]) -> None:
    """Store ``leaf_hashes`` as leaves ``start…`` and cascade completed tiles upward.

    ``start`` must be the current tree size (the sequencer holds the log lock).
    """
    level, position, hashes = 0, start, b"".join(leaf_hashes)
    while hashes:
        first_tile, offset = divmod(position, TILE_WIDTH)
        if offset:
            existing = session.execute(
                select(_tiles.c.hashes).where(_tiles.c.level == level, _tiles.c.idx == first_tile)
            ).scalar_one()
            if len(existing) != offset * _H:
                raise TreeRangeInvalid("partial tile does not match the tree size")
            hashes = bytes(existing) + hashes
            session.execute(
                delete(_tiles).where(_tiles.c.level == level, _tiles.c.idx == first_tile)
            )
        step = TILE_WIDTH * _H
        chunks = [hashes[o : o + step] for o in range(0, len(hashes), step)]
        rows, roots = [], []
        for i, chunk in enumerate(chunks):
            upper = None
            if len(chunk) == step:
                upper, root = upper_levels(chunk)
                roots.append(root)
            rows.append({"level": level, "idx": first_tile + i, "hashes": chunk, "upper": upper})
        session.execute(insert(_tiles), rows)
        # The completed tiles are contiguous from first_tile; their MTHs extend the level above.
        level, position = level + 1, first_tile
        hashes = b"".join(roots)
