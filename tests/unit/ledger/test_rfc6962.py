"""Unit tests of credit_commons.ledger.rfc6962: value types, ranges, sources, edge cases."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from tests.reference import merkle

from credit_commons.ledger import rfc6962
from credit_commons.ledger.errors import (
    ConsistencyProofInvalid,
    HashInvalid,
    InclusionProofInvalid,
    LogError,
    TreeRangeInvalid,
)

LEAVES = [rfc6962.leaf_hash(bytes([i])) for i in range(20)]
TREE = rfc6962.InMemoryTree(LEAVES)
REF = merkle.ReferenceTree(LEAVES)


class TestHash:
    def test_accepts_exactly_32_bytes(self) -> None:
        h = rfc6962.Hash(bytes(32))
        assert h == bytes(32)
        assert isinstance(h, bytes)
        assert rfc6962.Hash(bytearray(32)) == h
        assert rfc6962.Hash(memoryview(bytes(32))) == h

    @pytest.mark.parametrize("length", [0, 1, 31, 33, 64])
    def test_rejects_other_lengths(self, length: int) -> None:
        with pytest.raises(HashInvalid, match="32 bytes"):
            rfc6962.Hash(bytes(length))

    def test_rejects_non_bytes(self) -> None:
        # bytes(32) would silently make 32 zero bytes from an int.
        with pytest.raises(HashInvalid):
            rfc6962.Hash(32)  # type: ignore[arg-type]
        with pytest.raises(HashInvalid):
            rfc6962.Hash("a" * 32)  # type: ignore[arg-type]

    def test_base64_and_hex_round_trip(self) -> None:
        h = rfc6962.leaf_hash(b"x")
        assert rfc6962.Hash.from_b64(h.b64()) == h
        assert rfc6962.Hash.from_hex(h.hex()) == h
        assert repr(h) == f"Hash.from_hex('{h.hex()}')"

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "AAAA",
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",  # unpadded
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=",  # non-zero trailing bits
            "47DEQpj8HBSa-_TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",  # base64url alphabet
        ],
    )
    def test_from_b64_is_strict(self, text: str) -> None:
        with pytest.raises(HashInvalid):
            rfc6962.Hash.from_b64(text)

    def test_from_hex_rejects_garbage(self) -> None:
        with pytest.raises(HashInvalid):
            rfc6962.Hash.from_hex("zz" * 32)


def test_hash_functions() -> None:
    assert hashlib.sha256(b"").digest() == rfc6962.EMPTY_ROOT
    assert rfc6962.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    a, b = LEAVES[0], LEAVES[1]
    assert rfc6962.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    with pytest.raises(HashInvalid):
        rfc6962.node_hash(a, b"")
    with pytest.raises(HashInvalid):
        rfc6962.node_hash(b"x" * 31, b)


def test_merkle_root_of_small_lists() -> None:
    assert rfc6962.merkle_root([]) == rfc6962.EMPTY_ROOT
    assert rfc6962.merkle_root([LEAVES[0]]) == LEAVES[0]
    assert rfc6962.merkle_root(LEAVES[:2]) == rfc6962.node_hash(LEAVES[0], LEAVES[1])
    with pytest.raises(HashInvalid):
        rfc6962.merkle_root([b""])


class TestInMemoryTree:
    def test_grows_by_appending(self) -> None:
        tree = rfc6962.InMemoryTree()
        assert tree.size == 0
        assert tree.root() == rfc6962.EMPTY_ROOT
        for n, leaf in enumerate(LEAVES, start=1):
            tree.append(leaf)
            assert tree.size == n
            assert tree.root() == REF.root(n)

    @pytest.mark.parametrize("node", [(0, 20), (0, -1), (2, 5), (5, 0), (-1, 0), (1, 10)], ids=str)
    def test_refuses_incomplete_or_missing_subtrees(self, node: tuple[int, int]) -> None:
        with pytest.raises(TreeRangeInvalid):
            TREE.subtree_roots([rfc6962.NodeId(*node)])

    def test_root_beyond_size(self) -> None:
        with pytest.raises(TreeRangeInvalid):
            TREE.root(21)

    def test_rejects_bad_leaf(self) -> None:
        tree = rfc6962.InMemoryTree()
        with pytest.raises(HashInvalid):
            tree.append(b"")
        assert tree.size == 0


@pytest.mark.parametrize(
    ("index", "size"),
    [(0, 0), (5, 5), (6, 5), (-1, 5), (0, -1), (0, 2**64), (True, 5), (0.0, 5)],
    ids=str,
)
def test_inclusion_plan_rejects_impossible_ranges(index: int, size: int) -> None:
    with pytest.raises(TreeRangeInvalid):
        rfc6962.inclusion_plan(index, size)


@pytest.mark.parametrize(
    ("size1", "size2"), [(0, 0), (0, 5), (6, 5), (-1, 5), (1, 2**64), (1, True)], ids=str
)
def test_consistency_plan_rejects_impossible_ranges(size1: int, size2: int) -> None:
    with pytest.raises(TreeRangeInvalid):
        rfc6962.consistency_plan(size1, size2)


def test_plans_at_ten_million_leaves_are_small() -> None:
    n = 10_000_000
    assert len(rfc6962.inclusion_plan(n - 1, n).nodes) <= 24
    assert len(rfc6962.inclusion_plan(123_457, n).nodes) <= 2 * 24
    assert len(rfc6962.consistency_plan(9_999_999, n).nodes) <= 2 * 24 + 1
    assert len(rfc6962.root_plan(n).nodes) == n.bit_count()


def test_plan_at_the_largest_tree() -> None:
    size = rfc6962.MAX_TREE_SIZE
    plan = rfc6962.inclusion_plan(size - 1, size)
    assert len(plan.nodes) == (size - 1).bit_count()
    assert rfc6962.consistency_plan(size - 1, size).nodes


def test_equal_sizes_need_no_source() -> None:
    class NoSource:
        def subtree_roots(self, nodes: Sequence[rfc6962.NodeId], /) -> list[bytes]:
            raise AssertionError("not needed")

    assert rfc6962.consistency_proof(7, 7, NoSource()) == ()
    assert rfc6962.root_from_source(0, NoSource()) == rfc6962.EMPTY_ROOT


class BadSource:
    """A source that returns whatever it was built with."""

    def __init__(self, hashes: list[bytes]) -> None:
        self.hashes = hashes

    def subtree_roots(self, nodes: Sequence[rfc6962.NodeId], /) -> list[bytes]:
        return self.hashes


def test_source_returning_wrong_count_is_an_error() -> None:
    with pytest.raises(LogError, match="returned 1 hashes"):
        rfc6962.inclusion_proof(0, 8, BadSource([LEAVES[0]]))


def test_source_returning_short_hash_is_an_error() -> None:
    with pytest.raises(HashInvalid):
        rfc6962.inclusion_proof(0, 2, BadSource([b"short"]))


def test_proof_plan_checks_its_fold_range() -> None:
    with pytest.raises(ValueError, match="fold range"):
        rfc6962.ProofPlan((rfc6962.NodeId(0, 0),), 1, 2)


class TestVerifyInclusion:
    def test_accepts_and_returns_root(self) -> None:
        proof = rfc6962.inclusion_proof(5, 13, TREE)
        rfc6962.verify_inclusion(LEAVES[5], 5, 13, proof, REF.root(13))
        assert rfc6962.root_from_inclusion_proof(LEAVES[5], 5, 13, proof) == REF.root(13)

    @pytest.mark.parametrize(("index", "size"), [(True, 13), (5, -1), (-1, 13), (5, 2**64)])
    def test_rejects_bad_integers(self, index: int, size: int) -> None:
        proof = rfc6962.inclusion_proof(5, 13, TREE)
        with pytest.raises(InclusionProofInvalid):
            rfc6962.verify_inclusion(LEAVES[5], index, size, proof, REF.root(13))

    def test_rejects_overlong_proof_before_hashing(self) -> None:
        with pytest.raises(InclusionProofInvalid, match="longer than any tree"):
            rfc6962.verify_inclusion(LEAVES[0], 0, 2**64 - 1, [LEAVES[0]] * 65, LEAVES[0])

    def test_rejects_short_hashes(self) -> None:
        proof = list(rfc6962.inclusion_proof(5, 13, TREE))
        with pytest.raises(InclusionProofInvalid, match="proof hash"):
            rfc6962.verify_inclusion(LEAVES[5], 5, 13, [*proof[:-1], b""], REF.root(13))
        with pytest.raises(InclusionProofInvalid, match="leaf hash"):
            rfc6962.verify_inclusion(b"", 5, 13, proof, REF.root(13))
        with pytest.raises(InclusionProofInvalid, match="root"):
            rfc6962.verify_inclusion(LEAVES[5], 5, 13, proof, REF.root(13)[:31])

    def test_single_leaf_tree(self) -> None:
        rfc6962.verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])
        with pytest.raises(InclusionProofInvalid):
            rfc6962.verify_inclusion(b"", 0, 1, [], b"")


class TestVerifyConsistency:
    def test_accepts_generated_proof(self) -> None:
        proof = rfc6962.consistency_proof(6, 19, TREE)
        rfc6962.verify_consistency(6, 19, proof, REF.root(6), REF.root(19))

    def test_equal_sizes(self) -> None:
        rfc6962.verify_consistency(7, 7, [], REF.root(7), REF.root(7))
        with pytest.raises(ConsistencyProofInvalid, match="roots differ"):
            rfc6962.verify_consistency(7, 7, [], REF.root(7), REF.root(8))
        with pytest.raises(ConsistencyProofInvalid, match="must be empty"):
            rfc6962.verify_consistency(7, 7, [REF.root(7)], REF.root(7), REF.root(7))

    def test_from_size_zero_is_rejected(self) -> None:
        # The documented policy: even 0 -> 0 with two empty roots.
        empty = rfc6962.EMPTY_ROOT
        with pytest.raises(ConsistencyProofInvalid, match="empty tree"):
            rfc6962.verify_consistency(0, 0, [], empty, empty)
        with pytest.raises(ConsistencyProofInvalid, match="empty tree"):
            rfc6962.verify_consistency(0, 5, [], empty, REF.root(5))

    def test_rejects_shrinking_tree(self) -> None:
        with pytest.raises(ConsistencyProofInvalid, match="smaller"):
            rfc6962.verify_consistency(6, 5, [], REF.root(6), REF.root(5))

    def test_rejects_empty_and_overlong_proofs(self) -> None:
        with pytest.raises(ConsistencyProofInvalid, match="empty"):
            rfc6962.verify_consistency(3, 5, [], REF.root(3), REF.root(5))
        with pytest.raises(ConsistencyProofInvalid, match="longer than any"):
            rfc6962.verify_consistency(3, 5, [LEAVES[0]] * 129, REF.root(3), REF.root(5))

    @pytest.mark.parametrize(("size1", "size2"), [(True, 5), (3, -5), (3, 2**64)])
    def test_rejects_bad_integers(self, size1: int, size2: int) -> None:
        with pytest.raises(ConsistencyProofInvalid):
            rfc6962.verify_consistency(size1, size2, [LEAVES[0]], REF.root(3), REF.root(5))

    def test_rejects_short_roots(self) -> None:
        proof = rfc6962.consistency_proof(3, 5, TREE)
        with pytest.raises(ConsistencyProofInvalid, match="first root"):
            rfc6962.verify_consistency(3, 5, proof, b"", REF.root(5))
        with pytest.raises(ConsistencyProofInvalid, match="second root"):
            rfc6962.verify_consistency(3, 5, proof, REF.root(3), REF.root(5)[1:])
