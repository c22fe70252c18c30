"""The Poseidon authors' reference vector for BLS12-381 (tests/vectors/zk/README.md)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from credit_commons.zk import FIELD_MODULUS, NODE_DIR, POSEIDON, hash2, permute

VECTOR = json.loads((Path(__file__).parent / "zk" / "poseidonperm_x5_255_3.json").read_text())


def _ints(values: list[str]) -> list[int]:
    return [int(v, 16) for v in values]


def test_instance_is_the_vectors() -> None:
    assert POSEIDON.name == VECTOR["instance"]
    assert POSEIDON.modulus == FIELD_MODULUS == int(VECTOR["field_modulus"], 16)
    assert (POSEIDON.t, POSEIDON.alpha) == (VECTOR["t"], VECTOR["alpha"])
    assert (POSEIDON.full_rounds, POSEIDON.partial_rounds) == (
        VECTOR["full_rounds"],
        VECTOR["partial_rounds"],
    )


def test_permutation_matches_the_reference() -> None:
    assert list(permute(_ints(VECTOR["input"]))) == _ints(VECTOR["output"])
    assert hash2(1, 2) == _ints(VECTOR["output"])[0]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda out: [out[0] ^ 1, out[1], out[2]],
        lambda out: [out[0], out[1], out[2] ^ (1 << 200)],
        lambda out: [out[1], out[0], out[2]],
    ],
)
def test_tampered_outputs_do_not_match(tamper) -> None:  # type: ignore[no-untyped-def]
    assert list(permute(_ints(VECTOR["input"]))) != tamper(_ints(VECTOR["output"]))


def test_other_inputs_do_not_give_the_reference_output() -> None:
    assert list(permute([0, 2, 1])) != _ints(VECTOR["output"])
    assert list(permute([1, 1, 2])) != _ints(VECTOR["output"])


def _circom_constants() -> tuple[list[int], list[list[int]]]:
    text = (NODE_DIR.parent / "circuits" / "poseidon_constants.circom").read_text()
    rc_block = text.split("function POSEIDON_RC()")[1].split("function POSEIDON_MDS()")[0]
    mds_block = text.split("function POSEIDON_MDS()")[1]
    rc = [
        int(x)
        for x in rc_block.replace("[", " ").replace("]", " ").replace(",", " ").split()
        if x.isdigit()
    ]
    mds = [[int(x) for x in row.split("]")[0].split(",")] for row in mds_block.split("[")[2:]]
    return rc, mds


def test_circuit_constants_are_the_generated_ones() -> None:
    # The committed circom constants are byte for byte what the generator writes from
    # @noble/curves' Grain LFSR, and they start with the reference's constants.
    subprocess.run(["node", "gen-constants.mjs", "--check"], cwd=NODE_DIR, check=True)
    rc, mds = _circom_constants()
    assert len(rc) == POSEIDON.t * (POSEIDON.full_rounds + POSEIDON.partial_rounds)
    assert rc[0] == int(VECTOR["first_round_constant"], 16)
    assert mds[0][0] == int(VECTOR["mds_0_0"], 16)
    assert all(0 <= c < FIELD_MODULUS for c in rc)
