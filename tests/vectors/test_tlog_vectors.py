"""Published transparency-log vectors (tests/vectors/tlog/README.md) and their tampered siblings.

* transparency-dev/merkle probes: every ``wantErr`` probe is rejected, every happy probe is
  accepted (one documented deviation), and every happy probe has tampered siblings.
* The RFC 6962 reference tree: leaf and node hashes, roots, and every inclusion and
  consistency proof up to 8 leaves, generated and verified, each with tampered siblings.
* golang/mod sumdb/note and the C2SP spec examples: see test_tlog_note_vectors.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from tests.reference import merkle

from credit_commons.ledger import rfc6962
from credit_commons.ledger.errors import ConsistencyProofInvalid, InclusionProofInvalid, LogError

TLOG = Path(__file__).parent / "tlog"
PROBES = TLOG / "transparency-dev-merkle" / "testdata"
REFERENCE = json.loads((TLOG / "derived" / "rfc6962_reference_tree.json").read_text())

# Probes whose upstream expectation Credit Commons deliberately does not follow.
KNOWN_DEVIATIONS = {
    "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json": (
        "equal 12-byte roots: every hash must be exactly 32 bytes"
    ),
}
EXTRA = bytes(range(32))  # a well-formed hash that belongs to no proof


def _load(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.relative_to(PROBES).as_posix(), json.loads(path.read_text()))
        for path in sorted((PROBES / kind).rglob("*.json"))
    ]


def _bytes(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _flip(value: bytes, bit: int = 0) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@dataclass(frozen=True)
class Inclusion:
    leaf: bytes
    index: int
    size: int
    proof: tuple[bytes, ...]
    root: bytes

    @classmethod
    def from_probe(cls, probe: dict[str, Any]) -> Inclusion:
        proof = tuple(_bytes(p) for p in probe["proof"] or ())
        return cls(
            _bytes(probe["leafHash"]),
            probe["leafIdx"],
            probe["treeSize"],
            proof,
            _bytes(probe["root"]),
        )

    def check(self) -> None:
        rfc6962.verify_inclusion(self.leaf, self.index, self.size, self.proof, self.root)

    def tampered(self) -> Iterator[tuple[str, Inclusion]]:
        """Siblings that must be rejected: each changes what the proof claims."""
        for i, p in enumerate(self.proof):
            yield f"proof[{i}]-first-bit", replace(self, proof=_set(self.proof, i, _flip(p)))
            yield f"proof[{i}]-last-bit", replace(self, proof=_set(self.proof, i, _flip(p, 255)))
        yield "leaf-bit", replace(self, leaf=_flip(self.leaf))
        yield "root-bit", replace(self, root=_flip(self.root, 255))
        yield "empty-root", replace(self, root=rfc6962.EMPTY_ROOT)
        if self.leaf != self.root:
            yield "leaf-as-root", replace(self, root=self.leaf)
        if self.proof:
            yield "truncated-proof", replace(self, proof=self.proof[:-1])
            yield "headless-proof", replace(self, proof=self.proof[1:])
            yield "root-for-leaf", replace(self, leaf=self.root)
        yield "extended-proof", replace(self, proof=(*self.proof, EXTRA))
        yield "prefixed-proof", replace(self, proof=(EXTRA, *self.proof))
        yield "index-xor-1", replace(self, index=self.index ^ 1)
        yield "index-is-size", replace(self, index=self.size)
        for label, size in (
            ("plus-1", self.size + 1),
            ("minus-1", self.size - 1),
            ("double", self.size * 2),
            ("half", self.size // 2),
        ):
            # A size whose path has the same shape yields a genuinely valid proof (the
            # verifier cannot tell), so only shape-changing sizes are tampering.
            if self.index >= size or merkle.path_length(self.index, size) != len(self.proof):
                yield f"size-{label}", replace(self, size=size)


@dataclass(frozen=True)
class Consistency:
    size1: int
    size2: int
    proof: tuple[bytes, ...]
    root1: bytes
    root2: bytes

    @classmethod
    def from_probe(cls, probe: dict[str, Any]) -> Consistency:
        proof = tuple(_bytes(p) for p in probe["proof"] or ())
        return cls(
            probe["size1"], probe["size2"], proof, _bytes(probe["root1"]), _bytes(probe["root2"])
        )

    def check(self) -> None:
        rfc6962.verify_consistency(self.size1, self.size2, self.proof, self.root1, self.root2)

    def tampered(self) -> Iterator[tuple[str, Consistency]]:
        """Siblings that must be rejected: each changes what the proof claims."""
        for i, p in enumerate(self.proof):
            yield f"proof[{i}]-first-bit", replace(self, proof=_set(self.proof, i, _flip(p)))
            yield f"proof[{i}]-last-bit", replace(self, proof=_set(self.proof, i, _flip(p, 255)))
        yield "root1-bit", replace(self, root1=_flip(self.root1))
        yield "root2-bit", replace(self, root2=_flip(self.root2, 255))
        if self.root1 != self.root2:
            yield "swapped-roots", replace(self, root1=self.root2, root2=self.root1)
            yield "root2-is-root1", replace(self, root2=self.root1)
        if self.proof:
            yield "truncated-proof", replace(self, proof=self.proof[:-1])
            yield "headless-proof", replace(self, proof=self.proof[1:])
        yield "extended-proof", replace(self, proof=(*self.proof, EXTRA))
        yield "prefixed-proof", replace(self, proof=(EXTRA, *self.proof))
        yield "size1-zero", replace(self, size1=0)
        yield "sizes-reversed", replace(self, size1=self.size2 + 1)
        for label, size1, size2 in (
            ("size1-plus-1", self.size1 + 1, self.size2),
            ("size1-minus-1", self.size1 - 1, self.size2),
            ("size2-plus-1", self.size1, self.size2 + 1),
            ("size2-minus-1", self.size1, self.size2 - 1),
        ):
            # As for inclusion: only sizes that change the proof's shape are tampering.
            if not 0 < size1 <= size2 or merkle.proof_length(size1, size2) != len(self.proof):
                yield label, replace(self, size1=size1, size2=size2)


def _set(proof: tuple[bytes, ...], i: int, value: bytes) -> tuple[bytes, ...]:
    return (*proof[:i], value, *proof[i + 1 :])


INCLUSION_PROBES = _load("inclusion")
CONSISTENCY_PROBES = _load("consistency")


def _reference_cases() -> tuple[list[tuple[str, Inclusion]], list[tuple[str, Consistency]]]:
    leaves = [bytes.fromhex(h) for h in REFERENCE["leaf_hashes_hex"]]
    roots = {int(n): bytes.fromhex(h) for n, h in REFERENCE["root_by_size_hex"].items()}
    inclusion = []
    for key, proof in REFERENCE["inclusion_proofs"].items():
        m, n = map(int, key.split(","))
        path = tuple(bytes.fromhex(h) for h in proof)
        inclusion.append((f"rfc6962-tree/{key}", Inclusion(leaves[m], m, n, path, roots[n])))
    consistency = []
    for key, proof in REFERENCE["consistency_proofs"].items():
        m, n = map(int, key.split(","))
        path = tuple(bytes.fromhex(h) for h in proof)
        consistency.append((f"rfc6962-tree/{key}", Consistency(m, n, path, roots[m], roots[n])))
    return inclusion, consistency


REFERENCE_INCLUSION, REFERENCE_CONSISTENCY = _reference_cases()
ACCEPTING_INCLUSION = [
    (name, Inclusion.from_probe(p)) for name, p in INCLUSION_PROBES if not p["wantErr"]
] + REFERENCE_INCLUSION
ACCEPTING_CONSISTENCY = [
    (name, Consistency.from_probe(p))
    for name, p in CONSISTENCY_PROBES
    if not p["wantErr"] and name not in KNOWN_DEVIATIONS
] + REFERENCE_CONSISTENCY
TAMPERED_INCLUSION = [
    (f"{name}::{label}", case)
    for name, accepting in ACCEPTING_INCLUSION
    for label, case in accepting.tampered()
]
TAMPERED_CONSISTENCY = [
    (f"{name}::{label}", case)
    for name, accepting in ACCEPTING_CONSISTENCY
    for label, case in accepting.tampered()
]


def test_probe_counts() -> None:
    assert len(INCLUSION_PROBES) == 98
    assert len(CONSISTENCY_PROBES) == 98
    probes = INCLUSION_PROBES + CONSISTENCY_PROBES
    assert len(probes) == 196
    assert sum(not p["wantErr"] for _, p in probes) == 12
    assert len(REFERENCE_INCLUSION) == 36
    assert len(REFERENCE_CONSISTENCY) == 36
    # 12 probes + 72 reference proofs accept, less the one deviation.
    assert len(ACCEPTING_INCLUSION) + len(ACCEPTING_CONSISTENCY) == 83
    assert len(TAMPERED_INCLUSION) == 779
    assert len(TAMPERED_CONSISTENCY) == 666
    for _, accepting in ACCEPTING_INCLUSION + ACCEPTING_CONSISTENCY:
        assert len(list(accepting.tampered())) >= 8


@pytest.mark.parametrize(("name", "probe"), INCLUSION_PROBES, ids=[n for n, _ in INCLUSION_PROBES])
def test_inclusion_probe(name: str, probe: dict[str, Any]) -> None:
    case = Inclusion.from_probe(probe)
    if probe["wantErr"]:
        with pytest.raises(InclusionProofInvalid):
            case.check()
    else:
        case.check()


@pytest.mark.parametrize(
    ("name", "probe"), CONSISTENCY_PROBES, ids=[n for n, _ in CONSISTENCY_PROBES]
)
def test_consistency_probe(name: str, probe: dict[str, Any]) -> None:
    case = Consistency.from_probe(probe)
    if name in KNOWN_DEVIATIONS:
        assert not probe["wantErr"]
        with pytest.raises(ConsistencyProofInvalid, match="32 bytes"):
            case.check()
    elif probe["wantErr"]:
        with pytest.raises(ConsistencyProofInvalid):
            case.check()
    else:
        case.check()


def test_the_deviation_is_accepted_with_real_hashes() -> None:
    name = next(iter(KNOWN_DEVIATIONS))
    probe = dict(CONSISTENCY_PROBES)[name]
    root = base64.b64encode(bytes(32)).decode()
    Consistency.from_probe({**probe, "root1": root, "root2": root}).check()


@pytest.mark.parametrize(
    ("name", "case"), TAMPERED_INCLUSION, ids=[n for n, _ in TAMPERED_INCLUSION]
)
def test_tampered_inclusion_is_rejected(name: str, case: Inclusion) -> None:
    with pytest.raises(InclusionProofInvalid):
        case.check()


@pytest.mark.parametrize(
    ("name", "case"), TAMPERED_CONSISTENCY, ids=[n for n, _ in TAMPERED_CONSISTENCY]
)
def test_tampered_consistency_is_rejected(name: str, case: Consistency) -> None:
    with pytest.raises(ConsistencyProofInvalid):
        case.check()


def test_reference_tree_hashes() -> None:
    entries = [bytes.fromhex(h) for h in REFERENCE["leaf_inputs_hex"]]
    leaves = [rfc6962.leaf_hash(e) for e in entries]
    assert [h.hex() for h in leaves] == REFERENCE["leaf_hashes_hex"]
    tree = rfc6962.InMemoryTree(leaves)
    for level, row in enumerate(REFERENCE["node_hashes_hex_by_level"]):
        nodes = [rfc6962.NodeId(level, i) for i in range(len(row))]
        assert [h.hex() for h in tree.subtree_roots(nodes)] == row
    for size, root in REFERENCE["root_by_size_hex"].items():
        assert tree.root(int(size)).hex() == root
        assert rfc6962.merkle_root(leaves[: int(size)]).hex() == root
    assert rfc6962.EMPTY_ROOT.hex() == REFERENCE["root_by_size_hex"]["0"]


@pytest.mark.parametrize(
    ("name", "case"), REFERENCE_INCLUSION, ids=[n for n, _ in REFERENCE_INCLUSION]
)
def test_reference_inclusion_proof_generated_and_verified(name: str, case: Inclusion) -> None:
    leaves = [bytes.fromhex(h) for h in REFERENCE["leaf_hashes_hex"]]
    proof = rfc6962.inclusion_proof(case.index, case.size, rfc6962.InMemoryTree(leaves))
    assert proof == case.proof
    case.check()
    assert rfc6962.root_from_inclusion_proof(case.leaf, case.index, case.size, proof) == case.root


@pytest.mark.parametrize(
    ("name", "case"), REFERENCE_CONSISTENCY, ids=[n for n, _ in REFERENCE_CONSISTENCY]
)
def test_reference_consistency_proof_generated_and_verified(name: str, case: Consistency) -> None:
    leaves = [bytes.fromhex(h) for h in REFERENCE["leaf_hashes_hex"]]
    proof = rfc6962.consistency_proof(case.size1, case.size2, rfc6962.InMemoryTree(leaves))
    assert proof == case.proof
    case.check()


def test_every_error_is_a_log_error() -> None:
    # Callers catch LogError; the specific classes are for diagnostics.
    assert issubclass(InclusionProofInvalid, LogError)
    assert issubclass(ConsistencyProofInvalid, LogError)
