"""The Poseidon Merkle tree of a verifier's set of group ids (statement ``member_of_group``).

Fixed depth ``GROUP_TREE_DEPTH`` (6: up to 64 ids); leaf ``i`` is the ``i``-th id of the set
in ascending order, empty leaves are 0 (so ids are non-zero); a node is
``Poseidon(left, right)`` (:func:`credit_commons.zk.poseidon.hash2`, @noble/curves in the zk
Node worker).  The circuit recomputes the root from a leaf and its path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from credit_commons.zk.errors import FieldElementInvalid
from credit_commons.zk.node import NodeWorker
from credit_commons.zk.poseidon import hash2

__all__ = ["GROUP_TREE_DEPTH", "MerklePath", "group_tree_levels", "merkle_path", "merkle_root"]

GROUP_TREE_DEPTH = 6
"""The depth of every group tree: 2**6 = 64 leaves (the circuit's; a deeper tree put the proof
over a second: docs/zk.md, "Measured")."""


@dataclass(frozen=True, slots=True)
class MerklePath:
    """A leaf's siblings from the bottom up and its side at each level (0 left, 1 right)."""

    elements: tuple[int, ...]
    indices: tuple[int, ...]


def _leaves(group_ids: Iterable[int]) -> list[int]:
    ids = sorted(set(group_ids))
    if not ids or len(ids) > 2**GROUP_TREE_DEPTH:
        raise FieldElementInvalid(f"a group set holds 1 to {2**GROUP_TREE_DEPTH} ids")
    if any(isinstance(i, bool) or not isinstance(i, int) or not 0 < i < 2**64 for i in ids):
        raise FieldElementInvalid("a group id is an integer in [1, 2^64)")
    return ids + [0] * (2**GROUP_TREE_DEPTH - len(ids))


def group_tree_levels(
    group_ids: Iterable[int], *, worker: NodeWorker | None = None
) -> list[list[int]]:
    """Every level of the tree, leaves first, root last; raises :class:`FieldElementInvalid`."""
    levels = [_leaves(group_ids)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append(
            [hash2(below[i], below[i + 1], worker=worker) for i in range(0, len(below), 2)]
        )
    return levels


def merkle_root(group_ids: Iterable[int], *, worker: NodeWorker | None = None) -> int:
    """The root of the set's tree; raises :class:`FieldElementInvalid`."""
    return group_tree_levels(group_ids, worker=worker)[-1][0]


def merkle_path(
    group_ids: Iterable[int], group_id: int, *, worker: NodeWorker | None = None
) -> MerklePath:
    """The path of ``group_id`` in the set's tree; raises :class:`FieldElementInvalid` when it
    is not in the set."""
    levels = group_tree_levels(group_ids, worker=worker)
    if group_id == 0 or group_id not in levels[0]:
        raise FieldElementInvalid("the group id is not in the set")
    index = levels[0].index(group_id)
    elements, indices = [], []
    for level in levels[:-1]:
        elements.append(level[index ^ 1])
        indices.append(index & 1)
        index //= 2
    return MerklePath(tuple(elements), tuple(indices))
