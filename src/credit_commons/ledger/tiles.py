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
import threading
from collections import OrderedDict
from collections.abc import Sequence

from sqlalchemy import Table, delete, insert, select, tuple_
from sqlalchemy.orm import Session

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


class TileCache:
    """An LRU cache of *full* tiles, keyed by (level, index); safe across threads."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._data: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int]) -> bytes | None:
        """The cached tile, or None."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: tuple[int, int], value: bytes) -> None:
        """Cache a full tile (partial tiles must not be cached: they still grow)."""
        if len(value) != TILE_WIDTH * _H:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._capacity:
                self._data.popitem(last=False)


class TileHashSource:
    """Serves complete subtree hashes from stored tiles (the rfc6962 ``HashSource``)."""

    def __init__(self, session: Session, cache: TileCache | None = None) -> None:
        self._session = session
        self._cache = cache

    def tiles(self, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored tiles for ``keys`` (missing ones are absent), in one query."""
        found: dict[tuple[int, int], bytes] = {}
        missing = []
        for key in keys:
            cached = self._cache.get(key) if self._cache else None
            if cached is None:
                missing.append(key)
            else:
                found[key] = cached
        if missing:
            rows = self._session.execute(
                select(_tiles.c.level, _tiles.c.idx, _tiles.c.hashes).where(
                    tuple_(_tiles.c.level, _tiles.c.idx).in_(missing)
                )
            )
            for level, idx, data in rows:
                found[(level, idx)] = bytes(data)
                if self._cache:
                    self._cache.put((level, idx), bytes(data))
        return found

    def subtree_roots(self, nodes: Sequence[NodeId], /) -> list[bytes]:
        """The MTH of each complete subtree in ``nodes``; raises ``TreeRangeInvalid`` for
        one the stored tiles do not hold completely."""
        spans = []
        for node in nodes:
            tile_level, rest = divmod(node.level, TILE_HEIGHT)
            first = node.index << rest  # position among the tile level's hashes
            tile_index, offset = divmod(first, TILE_WIDTH)
            spans.append(((tile_level, tile_index), offset, 1 << rest))
        tiles = self.tiles({key for key, _, _ in spans})
        out = []
        for key, offset, count in spans:
            data = tiles.get(key)
            end = (offset + count) * _H
            if data is None or len(data) < end:
                raise TreeRangeInvalid("the log does not hold that subtree yet")
            chunk = data[offset * _H : end]
            out.append(chunk if count == 1 else subtree_mth(chunk))
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
        session.execute(
            insert(_tiles),
            [{"level": level, "idx": first_tile + i, "hashes": c} for i, c in enumerate(chunks)],
        )
        completed = [c for c in chunks if len(c) == step]
        # The completed tiles are contiguous from first_tile; their MTHs extend the level above.
        level, position = level + 1, first_tile
        hashes = b"".join(subtree_mth(data) for data in completed)
