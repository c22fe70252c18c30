"""The circuit's Poseidon computes the native one (@noble/curves) on many inputs.

The permutation and Hash2 templates of ``circuits/poseidon.circom`` are compiled here (circom2,
``--prime bls12381``) into small test circuits whose witnesses are compared with
``credit_commons.zk.permute`` and ``hash2``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credit_commons.zk import FIELD_MODULUS, NODE_DIR, NodeWorker, hash2, permute

CIRCUITS = NODE_DIR.parent / "circuits"
ELEMENTS = st.integers(min_value=0, max_value=FIELD_MODULUS - 1)
MAINS = {
    "perm": "component main = PoseidonPermutation();",
    "hash2": "component main = Hash2();",
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("poseidon-circuit")
    for name in ("poseidon.circom", "poseidon_constants.circom"):
        shutil.copy(CIRCUITS / name, folder / name)
    wasm = {}
    for name, main in MAINS.items():
        (folder / f"{name}.circom").write_text(
            f'pragma circom 2.1.0;\ninclude "poseidon.circom";\n{main}\n'
        )
        # circom2 (WASI) reads files relative to its working directory.
        subprocess.run(
            [str(NODE_DIR / "node_modules" / ".bin" / "circom2"), f"{name}.circom", "--wasm",
             "--prime", "bls12381", "-o", "."],
            cwd=folder, check=True, capture_output=True,
        )  # fmt: skip
        wasm[name] = folder / f"{name}_js" / f"{name}.wasm"
    return wasm


@pytest.fixture(scope="module")
def worker() -> Iterator[NodeWorker]:
    with NodeWorker() as node:
        yield node


def _witness(worker: NodeWorker, wasm: Path, inputs: dict[str, object]) -> list[int]:
    reply = worker.call({"op": "witness", "wasm": str(wasm), "input": inputs})
    assert reply["ok"] is True, reply
    return [int(w) for w in reply["witness"]]


def test_circuit_permutation_gives_the_reference_vector(
    compiled: dict[str, Path], worker: NodeWorker
) -> None:
    witness = _witness(worker, compiled["perm"], {"in": ["0", "1", "2"]})
    assert witness[0] == 1
    assert tuple(witness[1:4]) == permute([0, 1, 2])


@settings(max_examples=40)
@given(ELEMENTS, ELEMENTS, ELEMENTS)
def test_circuit_permutation_is_the_native_one(
    compiled: dict[str, Path], worker: NodeWorker, a: int, b: int, c: int
) -> None:
    witness = _witness(worker, compiled["perm"], {"in": [str(a), str(b), str(c)]})
    assert tuple(witness[1:4]) == permute([a, b, c], worker=worker)


@settings(max_examples=40)
@given(ELEMENTS, ELEMENTS)
def test_circuit_hash2_is_the_native_one(
    compiled: dict[str, Path], worker: NodeWorker, a: int, b: int
) -> None:
    witness = _witness(worker, compiled["hash2"], {"a": str(a), "b": str(b)})
    assert witness[1] == hash2(a, b, worker=worker)
    assert witness[1] != hash2(b, a, worker=worker) or a == b
