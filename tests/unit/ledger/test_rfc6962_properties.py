"""The fast RFC 6962 code checked against the naive reference in tests/reference/merkle.py.

Every size up to 300 is covered exhaustively (every root, every inclusion proof, every
consistency proof); hypothesis samples trees up to 70,000 leaves (past the 65,536 leaves of a
full level-1 tile) and tree sizes up to 2**64 - 1 for the shape of the plans.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.reference import merkle

from credit_commons.ledger import rfc6962
from credit_commons.ledger.errors import ConsistencyProofInvalid, InclusionProofInvalid

EXHAUSTIVE = 300
LARGE = 70_000

LEAVES = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(LARGE)]
TREE = rfc6962.InMemoryTree(LEAVES)
REF = merkle.ReferenceTree(LEAVES)


class BoundedSource:
    """A fake source for one tree size: it refuses any subtree not complete in that size,
    and records each call, so a test sees exactly what a tile store would be asked."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.calls: list[list[rfc6962.NodeId]] = []

    def subtree_roots(self, nodes: Sequence[rfc6962.NodeId], /) -> list[bytes]:
        self.calls.append(list(nodes))
        for node in nodes:
            assert (node.index + 1) << node.level <= self.size, node
        return TREE.subtree_roots(nodes)


def _max_nodes(size: int) -> int:
    # An inclusion proof has at most ceil(log2 n) hashes; the folded right edge adds at
    # most as many subtree reads again; a consistency proof adds one node.
    return 2 * max(size - 1, 1).bit_length() + 1


def _check_inclusion(m: int, n: int) -> None:
    source = BoundedSource(n)
    proof = rfc6962.inclusion_proof(m, n, source)
    assert list(proof) == REF.path(m, n)
    assert len(source.calls) == 1
    assert len(source.calls[0]) <= _max_nodes(n)
    rfc6962.verify_inclusion(LEAVES[m], m, n, proof, REF.root(n))


def _check_consistency(m: int, n: int) -> None:
    source = BoundedSource(n)
    proof = rfc6962.consistency_proof(m, n, source)
    assert list(proof) == REF.proof(m, n)
    assert len(source.calls) == (1 if m < n else 0)
    assert all(len(call) <= _max_nodes(n) for call in source.calls)
    rfc6962.verify_consistency(m, n, proof, REF.root(m), REF.root(n))


def test_roots_for_every_size_up_to_300() -> None:
    for n in range(EXHAUSTIVE + 1):
        expected = REF.root(n)
        assert rfc6962.root_from_source(n, BoundedSource(n)) == expected
        assert rfc6962.merkle_root(LEAVES[:n]) == expected


def test_every_inclusion_proof_up_to_300() -> None:
    for n in range(1, EXHAUSTIVE + 1):
        for m in range(n):
            _check_inclusion(m, n)


def test_every_consistency_proof_up_to_300() -> None:
    for n in range(1, EXHAUSTIVE + 1):
        for m in range(1, n + 1):
            _check_consistency(m, n)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_random_inclusion_proofs_in_large_trees(data: st.DataObject) -> None:
    n = data.draw(st.integers(EXHAUSTIVE + 1, LARGE), label="size")
    m = data.draw(st.integers(0, n - 1), label="index")
    _check_inclusion(m, n)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_random_consistency_proofs_in_large_trees(data: st.DataObject) -> None:
    n = data.draw(st.integers(EXHAUSTIVE + 1, LARGE), label="size2")
    m = data.draw(st.integers(1, n), label="size1")
    _check_consistency(m, n)


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, rfc6962.MAX_TREE_SIZE), data=st.data())
def test_plans_stay_logarithmic_and_inside_the_tree(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1), label="index")
    size1 = data.draw(st.integers(1, size), label="size1")
    for plan in (rfc6962.inclusion_plan(index, size), rfc6962.consistency_plan(size1, size)):
        assert len(plan.nodes) <= _max_nodes(size)
        assert len(set(plan.nodes)) == len(plan.nodes)
        assert all((node.index + 1) << node.level <= size for node in plan.nodes)
    assert len(rfc6962.root_plan(size).nodes) == size.bit_count()


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_bit_flip_in_an_inclusion_proof_is_rejected(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, LARGE), label="size")
    m = data.draw(st.integers(0, n - 1), label="index")
    proof = list(rfc6962.inclusion_proof(m, n, TREE))
    which = data.draw(st.integers(0, len(proof) - 1), label="hash")
    bit = data.draw(st.integers(0, 255), label="bit")
    flipped = bytearray(proof[which])
    flipped[bit // 8] ^= 1 << (bit % 8)
    proof[which] = bytes(flipped)
    try:
        rfc6962.verify_inclusion(LEAVES[m], m, n, proof, REF.root(n))
    except InclusionProofInvalid:
        return
    raise AssertionError("a flipped proof hash was accepted")


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_bit_flip_in_a_consistency_proof_is_rejected(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, LARGE), label="size2")
    m = data.draw(st.integers(1, n - 1), label="size1")
    proof = list(rfc6962.consistency_proof(m, n, TREE))
    which = data.draw(st.integers(0, len(proof) - 1), label="hash")
    bit = data.draw(st.integers(0, 255), label="bit")
    flipped = bytearray(proof[which])
    flipped[bit // 8] ^= 1 << (bit % 8)
    proof[which] = bytes(flipped)
    try:
        rfc6962.verify_consistency(m, n, proof, REF.root(m), REF.root(n))
    except ConsistencyProofInvalid:
        return
    raise AssertionError("a flipped proof hash was accepted")


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_proof_for_another_leaf_is_rejected(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, LARGE), label="size")
    m = data.draw(st.integers(0, n - 1), label="index")
    other = data.draw(st.integers(0, n - 1).filter(lambda i: i != m), label="other")
    proof = rfc6962.inclusion_proof(other, n, TREE)
    try:
        rfc6962.verify_inclusion(LEAVES[m], m, n, proof, REF.root(n))
    except InclusionProofInvalid:
        return
    raise AssertionError("another leaf's proof was accepted")
