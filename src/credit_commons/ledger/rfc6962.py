"""RFC 6962 Merkle tree hashes and proofs (as restated in RFC 9162 §2.1), as pure functions.

The tree is the SHA-256 Merkle tree of Certificate Transparency: leaves are hashed with a
``0x00`` prefix, interior nodes with ``0x01`` (RFC 9162 §2.1.1).  Every hash is exactly 32
bytes; anything else raises, even where it would compare equal (so a zero-byte "root" of a
one-leaf tree is rejected rather than matched).

Proof generation does no I/O of its own.  It first computes a :class:`ProofPlan`: the
O(log n) *complete, aligned* subtrees (:class:`NodeId`) whose hashes make up the proof.  A
:class:`HashSource` serves those hashes in one batch, and the plan folds them into the
proof.  A complete subtree never changes once the log has grown past it, so a source can
serve any tree size up to the current one (a tile store maps ``NodeId(level, index)`` to a
tile and hashes at most 255 stored hashes together).  :class:`InMemoryTree` is a source
over a list of leaf hashes, for tests and small trees.

Verification follows the numbered steps of RFC 9162 §2.1.3.2 and §2.1.4.2.  It returns
``None`` (or the computed root) when every check passed and raises otherwise; it never
returns ``False``.

Consistency from the empty tree.  Every tree trivially extends the empty tree, so a
"proof" from size 0 proves nothing.  Following the transparency-dev/merkle vectors, both
:func:`consistency_plan` and :func:`verify_consistency` reject ``size1 == 0`` (also when
``size2 == 0``); a client that has seen no checkpoint yet simply has nothing to check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, Self

from credit_commons.core.encoding import b64_decode, b64_encode, hex_decode, sha256
from credit_commons.core.errors import CommonsError, ValidationError
from credit_commons.ledger.errors import (
    ConsistencyProofInvalid,
    HashInvalid,
    InclusionProofInvalid,
    LogError,
    TreeRangeInvalid,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "Hash",
    "HashSource",
    "InMemoryTree",
    "NodeId",
    "ProofPlan",
    "consistency_plan",
    "consistency_proof",
    "inclusion_plan",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_inclusion_proof",
    "root_from_source",
    "root_plan",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
# Tree sizes and leaf indices are uint64 on the wire (RFC 9162 §4).
MAX_TREE_SIZE = 2**64 - 1
# No valid proof has more hashes than these; longer input is rejected before hashing.
_MAX_INCLUSION_PATH = 64
_MAX_CONSISTENCY_PATH = 128


class Hash(bytes):
    """A SHA-256 hash: exactly 32 bytes.  Raises :class:`HashInvalid` on anything else."""

    __slots__ = ()

    def __new__(cls, value: bytes | bytearray | memoryview) -> Self:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise HashInvalid("a hash must be a byte string")
        raw = bytes(value)
        if len(raw) != HASH_SIZE:
            raise HashInvalid(f"a hash must be {HASH_SIZE} bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    @classmethod
    def from_b64(cls, text: str) -> Self:
        """Parse standard padded base64 (RFC 4648 §4); raises :class:`HashInvalid`."""
        try:
            return cls(b64_decode(text))
        except ValidationError as e:
            raise HashInvalid("a hash must be canonical base64") from e

    @classmethod
    def from_hex(cls, text: str) -> Self:
        """Parse lower-case hex; raises :class:`HashInvalid`."""
        try:
            return cls(hex_decode(text))
        except ValidationError as e:
            raise HashInvalid("a hash must be hex") from e

    def b64(self) -> str:
        """Standard padded base64, as checkpoints and tlog vectors write hashes."""
        return b64_encode(self)

    def __repr__(self) -> str:
        return f"Hash.from_hex({self.hex()!r})"


# RFC 9162 §2.1.1: MTH({}) = HASH(), the hash of the empty string.
EMPTY_ROOT = Hash(sha256(b""))


def _node(left: bytes, right: bytes) -> bytes:
    # RFC 9162 §2.1.1: MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])).
    return sha256(b"\x01" + left + right)


def _as_hash(value: bytes, error: type[LogError], what: str) -> Hash:
    if isinstance(value, Hash):
        return value
    try:
        return Hash(value)
    except HashInvalid as e:
        raise error(f"{what}: {e.detail}") from e


def leaf_hash(entry: bytes) -> Hash:
    """The leaf hash ``HASH(0x00 || entry)`` of a log entry (RFC 9162 §2.1.1)."""
    return Hash(sha256(b"\x00" + entry))


def node_hash(left: bytes, right: bytes) -> Hash:
    """The interior node hash ``HASH(0x01 || left || right)`` (RFC 9162 §2.1.1).

    Raises :class:`HashInvalid` unless both children are 32-byte hashes.
    """
    return Hash(_node(_as_hash(left, HashInvalid, "left"), _as_hash(right, HashInvalid, "right")))


@dataclass(frozen=True, slots=True)
class NodeId:
    """The complete subtree of ``2**level`` leaves ``[index << level, (index + 1) << level)``."""

    level: int
    index: int


class HashSource(Protocol):
    """Serves the hashes of complete, aligned subtrees, e.g. from stored tiles.

    Proof functions request only subtrees that are complete in the tree size being proved,
    O(log n) of them, in a single call.
    """

    def subtree_roots(self, nodes: Sequence[NodeId], /) -> Sequence[bytes]:
        """The MTH of each requested subtree, in request order (32 bytes each).

        Raises :class:`TreeRangeInvalid` for a subtree the source does not hold completely.
        """
        ...


@dataclass(frozen=True)
class ProofPlan:
    """Which subtree hashes a proof (or root) consists of, and how to combine them.

    The hashes of ``nodes[fold_start:fold_end]`` are folded right to left into one hash:
    together they form the single, possibly incomplete, subtree at the right edge of the
    tree.  All other hashes are proof entries as they are.
    """

    nodes: tuple[NodeId, ...]
    fold_start: int = 0
    fold_end: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.fold_start <= self.fold_end <= len(self.nodes):
            raise ValueError("fold range must lie inside the node list")

    def assemble(self, hashes: Sequence[bytes]) -> tuple[Hash, ...]:
        """Combine the hashes a :class:`HashSource` returned for :attr:`nodes`.

        Raises :class:`LogError` if the source returned the wrong number of hashes and
        :class:`HashInvalid` if one is not 32 bytes.
        """
        if len(hashes) != len(self.nodes):
            raise LogError(f"hash source returned {len(hashes)} hashes for {len(self.nodes)}")
        checked = [_as_hash(h, HashInvalid, "subtree hash") for h in hashes]
        start, end = self.fold_start, self.fold_end
        if end - start <= 1:
            return tuple(checked)
        acc: bytes = checked[end - 1]
        for left in reversed(checked[start : end - 1]):
            acc = _node(left, acc)
        return (*checked[:start], Hash(acc), *checked[end:])


def _check_int(value: int, what: str, error: type[CommonsError] = TreeRangeInvalid) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TREE_SIZE:
        raise error(f"{what} must be an integer in [0, 2**64 - 1]")


def _range_nodes(start: int, end: int) -> list[NodeId]:
    # The complete subtrees of MTH(D[start:end]), left to right, for a start aligned to a
    # power of two at least end - start.  RFC 9162 §2.1.1 splits at the largest power of
    # two k < n, so the left part is always complete and the right part recurses.
    nodes = []
    while start < end:
        level = (end - start).bit_length() - 1
        nodes.append(NodeId(level, start >> level))
        start += 1 << level
    return nodes


def _path(level: int, index: int, size: int) -> ProofPlan:
    # RFC 9162 §2.1.3.1 PATH, for the complete subtree NodeId(level, index) in a tree of
    # `size` leaves.  Below the level where the node's path and the last leaf's path meet
    # (`inner`), every sibling is complete; the sibling at the meeting level is the right
    # edge MTH(D[start:size]) (folded); above it the path is shared with the last leaf,
    # so only left siblings (where the node is a right child) appear.
    last = (size - 1) >> level
    inner = (index ^ last).bit_length()
    nodes = [NodeId(level + i, (index >> i) ^ 1) for i in range(inner - 1)]
    fold_start = fold_end = len(nodes)
    if inner:
        start = ((index >> (inner - 1)) ^ 1) << (level + inner - 1)
        nodes.extend(_range_nodes(start, size))
        fold_end = len(nodes)
    nodes.extend(
        NodeId(level + i, (index >> i) ^ 1)
        for i in range(inner, index.bit_length())
        if (index >> i) & 1
    )
    return ProofPlan(tuple(nodes), fold_start, fold_end)


def root_plan(size: int) -> ProofPlan:
    """The subtrees whose fold is the root of a tree of ``size`` leaves (none for size 0).

    Raises :class:`TreeRangeInvalid` for a size outside ``[0, 2**64 - 1]``.
    """
    _check_int(size, "tree size")
    nodes = _range_nodes(0, size)
    return ProofPlan(tuple(nodes), 0, len(nodes))


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """The plan of the inclusion proof of leaf ``index`` in a tree of ``size`` leaves.

    Raises :class:`TreeRangeInvalid` unless ``0 <= index < size <= 2**64 - 1``.
    """
    _check_int(size, "tree size")
    _check_int(index, "leaf index")
    if index >= size:
        raise TreeRangeInvalid("leaf index must be less than the tree size")
    return _path(0, index, size)


def consistency_plan(size1: int, size2: int) -> ProofPlan:
    """The plan of the consistency proof from ``size1`` to ``size2`` leaves.

    Empty when the sizes are equal.  Raises :class:`TreeRangeInvalid` unless
    ``0 < size1 <= size2 <= 2**64 - 1`` (see the module docstring on size 0).
    """
    _check_int(size1, "first tree size")
    _check_int(size2, "second tree size")
    if size1 == 0:
        raise TreeRangeInvalid("a consistency proof from the empty tree proves nothing")
    if size1 > size2:
        raise TreeRangeInvalid("the first tree size must not exceed the second")
    if size1 == size2:
        return ProofPlan(())
    # RFC 9162 §2.1.4.1 SUBPROOF: the proof is the inclusion path, in the larger tree, of
    # the largest complete subtree that ends at size1, preceded by that subtree's own hash
    # unless it is the whole old tree (size1 a power of two), which the verifier knows.
    level = (size1 & -size1).bit_length() - 1
    index = (size1 - 1) >> level
    path = _path(level, index, size2)
    if index == 0:
        return path
    return ProofPlan((NodeId(level, index), *path.nodes), path.fold_start + 1, path.fold_end + 1)


def root_from_source(size: int, source: HashSource) -> Hash:
    """The root hash of the first ``size`` leaves held by ``source``.

    Raises :class:`TreeRangeInvalid` for a bad size and whatever the source raises.
    """
    plan = root_plan(size)
    if not plan.nodes:
        return EMPTY_ROOT
    (root,) = plan.assemble(source.subtree_roots(plan.nodes))
    return root


def inclusion_proof(index: int, size: int, source: HashSource) -> tuple[Hash, ...]:
    """The inclusion proof PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf side first.

    Raises :class:`TreeRangeInvalid` for an impossible range and whatever the source raises.
    """
    plan = inclusion_plan(index, size)
    return plan.assemble(source.subtree_roots(plan.nodes))


def consistency_proof(size1: int, size2: int, source: HashSource) -> tuple[Hash, ...]:
    """The consistency proof PROOF(size1, D[size2]) (RFC 9162 §2.1.4.1).

    Raises :class:`TreeRangeInvalid` for an impossible range (including ``size1 == 0``)
    and whatever the source raises.
    """
    plan = consistency_plan(size1, size2)
    if not plan.nodes:
        return ()
    return plan.assemble(source.subtree_roots(plan.nodes))


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> Hash:
    """The root that ``proof`` yields for ``leaf_hash`` at ``index`` in a tree of ``size``.

    Runs RFC 9162 §2.1.3.2 steps 1-4 and the ``sn == 0`` check of step 5; the caller
    compares the result with a trusted root (or use :func:`verify_inclusion`).  Raises
    :class:`InclusionProofInvalid` when the proof cannot be a path for that leaf.
    """
    fail = InclusionProofInvalid
    _check_int(index, "leaf index", fail)
    _check_int(size, "tree size", fail)
    if len(proof) > _MAX_INCLUSION_PATH:
        raise fail("inclusion proof is longer than any tree is deep")
    # 1. The leaf index must lie inside the tree.
    if index >= size:
        raise fail("leaf index is not less than the tree size")
    path = [_as_hash(p, fail, "proof hash") for p in proof]
    # 2. fn is the leaf's position, sn the last leaf's.  3. r starts as the leaf hash.
    fn, sn = index, size - 1
    r: bytes = _as_hash(leaf_hash, fail, "leaf hash")
    # 4. Climb one level per proof hash.
    for p in path:
        # 4a. Reaching the root with hashes left over means the proof is too long.
        if sn == 0:
            raise fail("inclusion proof is longer than the path to the root")
        # 4b. A right child (or the rightmost node, whose parent has no right child)
        # takes its sibling on the left; skip levels where the node is promoted.
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        # 4c.
        fn >>= 1
        sn >>= 1
    # 5. The proof must have reached the root.
    if sn != 0:
        raise fail("inclusion proof is shorter than the path to the root")
    return Hash(r)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` proves ``leaf_hash`` is leaf ``index`` of the tree with ``root``.

    RFC 9162 §2.1.3.2.  Returns ``None`` on success; raises :class:`InclusionProofInvalid`.
    """
    expected = _as_hash(root, InclusionProofInvalid, "root")
    # 5. r must equal the root hash.
    if root_from_inclusion_proof(leaf_hash, index, size, proof) != expected:
        raise InclusionProofInvalid("inclusion proof does not lead to the root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that ``proof`` proves the tree ``(size2, root2)`` extends ``(size1, root1)``.

    RFC 9162 §2.1.4.2, plus: equal sizes need an empty proof and equal roots, and
    ``size1 == 0`` is rejected (module docstring).  Returns ``None`` on success; raises
    :class:`ConsistencyProofInvalid`.
    """
    fail = ConsistencyProofInvalid
    _check_int(size1, "first tree size", fail)
    _check_int(size2, "second tree size", fail)
    first = _as_hash(root1, fail, "first root")
    second = _as_hash(root2, fail, "second root")
    if len(proof) > _MAX_CONSISTENCY_PATH:
        raise fail("consistency proof is longer than any proof can be")
    path = [_as_hash(c, fail, "proof hash") for c in proof]
    if size2 < size1:
        raise fail("the second tree is smaller than the first")
    if size1 == 0:
        raise fail("a consistency proof from the empty tree proves nothing")
    if size1 == size2:
        if path:
            raise fail("proof must be empty for equal tree sizes")
        if first != second:
            raise fail("roots differ for equal tree sizes")
        return
    # 1. A proof between different sizes is never empty.
    if not path:
        raise fail("consistency proof is empty")
    # 2. The old root is the first node when size1 is a power of two.
    if size1 & (size1 - 1) == 0:
        path.insert(0, first)
    # 3. fn and sn are the last leaves of the old and new trees.
    fn, sn = size1 - 1, size2 - 1
    # 4. Climb past the levels where the old tree's last node is a right child: the
    # first proof node already covers them.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. Both roots start from the first node.
    fr: bytes = path[0]
    sr: bytes = path[0]
    # 6. Climb one level per remaining proof hash.
    for c in path[1:]:
        # 6a.
        if sn == 0:
            raise fail("consistency proof is longer than the path to the root")
        # 6b. Left siblings belong to both trees, right siblings only to the new one.
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = _node(sr, c)
        # 6c.
        fn >>= 1
        sn >>= 1
    # 7. Both roots must match and the proof must have reached the new root.
    if sn != 0:
        raise fail("consistency proof is shorter than the path to the root")
    if fr != first:
        raise fail("consistency proof does not lead to the first root")
    if sr != second:
        raise fail("consistency proof does not lead to the second root")


def merkle_root(leaf_hashes: Iterable[bytes]) -> Hash:
    """MTH of a list of leaf hashes of any length (RFC 9162 §2.1.1).

    Raises :class:`HashInvalid` if a leaf hash is not 32 bytes.
    """
    tree = InMemoryTree(leaf_hashes)
    return tree.root()


class InMemoryTree:
    """A :class:`HashSource` over leaf hashes held in memory, for tests and small trees.

    Keeps every complete subtree hash level by level, so appending costs amortised O(1)
    hashes and each requested subtree is a list lookup.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0])

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash; raises :class:`HashInvalid` unless it is 32 bytes."""
        self._levels[0].append(_as_hash(leaf_hash, HashInvalid, "leaf hash"))
        level = 0
        # Each time a level gains an even count, its last two nodes complete a parent.
        while len(self._levels[level]) % 2 == 0:
            row = self._levels[level]
            level += 1
            if level == len(self._levels):
                self._levels.append([])
            self._levels[level].append(_node(row[-2], row[-1]))

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaf hashes in order; raises :class:`HashInvalid` (earlier ones stay)."""
        for h in leaf_hashes:
            self.append(h)

    def subtree_roots(self, nodes: Sequence[NodeId], /) -> list[bytes]:
        """The hashes of complete subtrees; raises :class:`TreeRangeInvalid` for others."""
        out = []
        for node in nodes:
            level, index = node.level, node.index
            if not 0 <= level < len(self._levels) or not 0 <= index < len(self._levels[level]):
                raise TreeRangeInvalid(f"subtree ({level}, {index}) is not complete")
            out.append(self._levels[level][index])
        return out

    def root(self, size: int | None = None) -> Hash:
        """The root at ``size`` leaves (default: all); raises :class:`TreeRangeInvalid`."""
        return root_from_source(self.size if size is None else size, self)
