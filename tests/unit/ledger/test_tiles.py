"""Tile internals: stored upper levels answer every node exactly as recomputing would."""

from __future__ import annotations

import secrets

import pytest

from credit_commons.formats.tlog_tiles import (
    TILE_WIDTH,
    Tile,
    expand_tile,
    subtree_mth,
    upper_levels,
)


@pytest.mark.parametrize("seed", range(3))
def test_every_node_of_a_full_tile(seed: int) -> None:
    del seed
    raw = secrets.token_bytes(TILE_WIDTH * 32)
    upper, root = upper_levels(raw)
    assert len(upper) == 30 * 32
    assert root == subtree_mth(raw)
    stored, recomputed = Tile(raw, upper), Tile(raw, None)
    levels = expand_tile(raw)
    for height in range(8):
        for offset in range(0, TILE_WIDTH, 1 << height):
            expected = levels[height][(offset >> height) * 32 : ((offset >> height) + 1) * 32]
            assert stored.node(height, offset) == expected
            assert recomputed.node(height, offset) == expected


def test_a_corrupted_upper_level_gives_a_different_node() -> None:
    raw = secrets.token_bytes(TILE_WIDTH * 32)
    upper, _ = upper_levels(raw)
    flipped = bytes([upper[0] ^ 1]) + upper[1:]
    assert Tile(raw, flipped).node(4, 0) != Tile(raw, upper).node(4, 0)
