"""An RFC 9162 Merkle tree kept as its frontier: the roots of its complete subtrees.

A tree of ``n`` leaves is, left to right, one complete subtree per set bit of ``n`` (from
the highest); its root (RFC 9162 §2.1.1 MTH) folds them from the right,
``node(s1, node(s2, … node(s_{k-1}, s_k)))``.  Appending a leaf merges the trailing
subtrees of equal height, as a binary counter carries.  So whoever holds the frontier of
the first ``n`` leaves — at most 64 hashes — can extend it with later leaves and compute
every later root, without keeping the leaves: what a committee member keeps of the log
it cosigns (ledger/committee_member.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from credit_commons.ledger.errors import HashInvalid
from credit_commons.ledger.rfc6962 import EMPTY_ROOT, HASH_SIZE, Hash, leaf_hash, node_hash

__all__ = ["Frontier"]


class Frontier:
    """The frontier of a tree of ``size`` leaves; see the module.

    Raises :class:`HashInvalid` when ``hashes`` is not one 32-byte hash per set bit of
    ``size``.
    """

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise HashInvalid("a frontier's size is a non-negative integer")
        self._hashes = [Hash(h) for h in hashes]
        if len(self._hashes) != size.bit_count():
            raise HashInvalid("a frontier holds one hash per set bit of its size")
        self.size = size

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> Frontier:
        """The frontier stored as its concatenated hashes; raises :class:`HashInvalid`."""
        if len(data) % HASH_SIZE:
            raise HashInvalid("a stored frontier is a whole number of hashes")
        return cls(size, (data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)))

    def to_bytes(self) -> bytes:
        """The hashes, concatenated left to right."""
        return b"".join(self._hashes)

    def append_entry(self, entry: bytes) -> None:
        """Append the leaf of a log entry (its hash is ``leaf_hash(entry)``)."""
        self.append(leaf_hash(entry))

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash; raises :class:`HashInvalid` unless 32 bytes."""
        node = Hash(leaf)
        size = self.size
        # Each trailing 1 bit of the size is a complete subtree as high as the new one.
        while size & 1:
            node = node_hash(self._hashes.pop(), node)
            size >>= 1
        self._hashes.append(node)
        self.size += 1

    def root(self) -> Hash:
        """MTH of the leaves so far (the empty tree's root for none)."""
        if not self._hashes:
            return EMPTY_ROOT
        root = self._hashes[-1]
        for subtree in reversed(self._hashes[:-1]):
            root = node_hash(subtree, root)
        return root

    def copy(self) -> Frontier:
        """An independent copy."""
        return Frontier(self.size, self._hashes)
