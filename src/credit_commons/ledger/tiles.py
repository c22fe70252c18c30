"""Hash tiles (C2SP tlog-tiles@v0.1.0) in the database, and a proof hash source over them.

The tile format, its arithmetic and the cache of full tiles are
:mod:`credit_commons.formats.tlog_tiles`; here tiles are stored and read.  Tile level ``L``
holds the complete subtrees of ``2^(8L)`` leaves, and any complete aligned subtree of
``2^h`` leaves is the MTH of ``2^(h mod 8)`` consecutive hashes of one tile at level
``h // 8``: at most 255 hash operations over one stored row.  A proof at any size reads
O(log₂₅₆ n) rows.  Full tiles never change and are cached in memory; the one partial
tile per level is rewritten as it grows.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, and_, delete, insert, or_, select
from sqlalchemy.orm import Session

from credit_commons.formats.tlog_tiles import (
    HASH_SIZE,
    TILE_HEIGHT,
    TILE_WIDTH,
    Tile,
    TileCache,
    upper_levels,
)
from credit_commons.ledger.errors import TreeRangeInvalid
from credit_commons.ledger.models import LogTileRow
from credit_commons.ledger.rfc6962 import NodeId

__all__ = ["TileHashSource", "append_leaf_hashes"]

_H = HASH_SIZE
_tiles: Table = LogTileRow.__table__  # type: ignore[assignment]


class TileHashSource:
    """Serves complete subtree hashes from stored tiles (the rfc6962 ``HashSource``)."""

    def __init__(self, session: Session, cache: TileCache | None = None) -> None:
        self._session = session
        self._cache = cache

    def _load(self, keys: set[tuple[int, int]]) -> dict[tuple[int, int], Tile]:
        found: dict[tuple[int, int], Tile] = {}
        missing = []
        for key in keys:
            cached = self._cache.get(key) if self._cache is not None else None
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
                tile = Tile(bytes(data), bytes(upper) if upper is not None else None)
                if self._cache is not None:
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
