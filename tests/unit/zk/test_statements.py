"""The four statements end to end: snarkjs proves, the Python (arkworks) verifier checks.

Soundness and completeness (issue 18): honest proofs at the boundary and above are accepted;
false statements cannot be proved; tampered proofs, changed public inputs, a proof for a lower
threshold and another binding are refused, and snarkjs's own verifier agrees on a few cases.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.zk.zk_support import BINDING, SALT, snarkjs_verifies, vkey_json

from credit_commons.zk import FIELD_MODULUS, NodeWorker, ProvingFailed, commit
from credit_commons.zk.binding import request_binding
from credit_commons.zk.errors import ProofInvalid, ProofMalformed
from credit_commons.zk.groth16 import Groth16Proof, VerificationKey, verify
from credit_commons.zk.merkle import GROUP_TREE_DEPTH, merkle_path, merkle_root
from credit_commons.zk.prover import ARTEFACTS_DIR, GeneratedProof, prove


@pytest.fixture(scope="module")
def worker() -> Iterator[NodeWorker]:
    with NodeWorker() as node:
        yield node


def _check(statement: str, proof: GeneratedProof, public: list[str] | None = None) -> None:
    verify(
        VerificationKey.parse(vkey_json(statement)),
        Groth16Proof.parse(proof.proof),
        public if public is not None else list(proof.public_signals),
    )


def _score(
    worker: NodeWorker, score: int, threshold: int, binding: int = BINDING
) -> GeneratedProof:
    return prove(
        "score_at_least",
        {
            "commitment": commit(score, SALT, worker=worker),
            "threshold": threshold,
            "binding": binding,
            "value": score,
            "salt": SALT,
        },
        worker=worker,
    )


def test_score_at_the_boundary_and_above_is_accepted(worker: NodeWorker, tmp_path: Path) -> None:
    for score in (650, 651, 900):
        proof = _score(worker, score, 650)
        assert proof.public_signals == (str(commit(score, SALT)), "650", str(BINDING))
        _check("score_at_least", proof)
    assert snarkjs_verifies("score_at_least", proof, tmp_path)


def test_score_below_the_threshold_cannot_be_proved(worker: NodeWorker) -> None:
    with pytest.raises(ProvingFailed):
        _score(worker, 649, 650)


def test_the_worker_reuses_a_circuit_until_a_file_changes_or_a_witness_fails(
    worker: NodeWorker, tmp_path: Path
) -> None:
    # The worker keeps each circuit's compiled witness calculator and proving key between
    # proofs; it must read a file again once it changed, and drop a calculator whose run failed.
    folder = tmp_path / "artefacts"
    folder.mkdir()
    for suffix in (".wasm", ".zkey"):
        shutil.copyfile(
            ARTEFACTS_DIR / f"score_at_least{suffix}", folder / f"score_at_least{suffix}"
        )

    def attempt(score: int) -> GeneratedProof:
        return prove(
            "score_at_least",
            {"commitment": commit(score, SALT, worker=worker), "threshold": 650,
             "binding": BINDING, "value": score, "salt": SALT},
            worker=worker,
            artefacts_dir=folder,
        )  # fmt: skip

    _check("score_at_least", attempt(700))
    with pytest.raises(ProvingFailed):
        attempt(649)
    _check("score_at_least", attempt(650))  # after a failed witness
    _check("score_at_least", attempt(651))  # the kept circuit, a second time
    # Another circuit's key written over the file: a worker that kept the old key would prove.
    shutil.copyfile(ARTEFACTS_DIR / "age_at_least.zkey", folder / "score_at_least.zkey")
    with pytest.raises(ProvingFailed):
        attempt(700)
    shutil.copyfile(ARTEFACTS_DIR / "score_at_least.zkey", folder / "score_at_least.zkey")
    _check("score_at_least", attempt(700))


def test_a_commitment_that_is_not_the_opening_cannot_be_proved(worker: NodeWorker) -> None:
    with pytest.raises(ProvingFailed):
        prove(
            "score_at_least",
            {"commitment": commit(700, SALT) + 1, "threshold": 650, "binding": 1, "value": 700,
             "salt": SALT},
            worker=worker,
        )  # fmt: skip


def test_changed_public_inputs_are_refused(worker: NodeWorker, tmp_path: Path) -> None:
    proof = _score(worker, 700, 650)
    commitment, threshold, binding = proof.public_signals
    # A proof made for θ' = 650 offered for θ = 700; another binding; another commitment.
    for public in (
        [commitment, "700", binding],
        [commitment, threshold, str(request_binding(nonce="n2", audience="a", request_hash="h"))],
        [str(commit(700, SALT + 1)), threshold, binding],
    ):
        with pytest.raises(ProofInvalid):
            _check("score_at_least", proof, public)
    moved = GeneratedProof(proof.proof, (commitment, "700", binding))
    assert not snarkjs_verifies("score_at_least", moved, tmp_path)


def test_tampered_proof_elements_are_refused(worker: NodeWorker, tmp_path: Path) -> None:
    proof = _score(worker, 700, 650)
    other = _score(worker, 701, 650)
    for member in ("pi_a", "pi_b", "pi_c"):
        # Another valid point (from another proof): well formed, so the equation refuses it.
        swapped = {**proof.proof, member: other.proof[member]}
        with pytest.raises(ProofInvalid):
            _check("score_at_least", GeneratedProof(swapped, proof.public_signals))
    assert not snarkjs_verifies(
        "score_at_least",
        GeneratedProof({**proof.proof, "pi_c": other.proof["pi_c"]}, proof.public_signals),
        tmp_path,
    )
    # A coordinate changed by one: off the curve, refused when parsed.
    bent = [str(int(proof.proof["pi_a"][0]) + 1), proof.proof["pi_a"][1], "1"]
    with pytest.raises(ProofMalformed):
        Groth16Proof.parse({**proof.proof, "pi_a": bent})


@pytest.mark.parametrize(
    "change",
    [
        lambda p: {**p, "pi_a": p["pi_a"][:2]},
        lambda p: {**p, "pi_a": [p["pi_a"][0], p["pi_a"][1], "0"]},
        lambda p: {**p, "pi_a": [int(p["pi_a"][0]), p["pi_a"][1], "1"]},
        lambda p: {**p, "pi_a": ["0" + p["pi_a"][0], p["pi_a"][1], "1"]},
        lambda p: {**p, "pi_b": [p["pi_b"][1], p["pi_b"][0], ["1", "0"]]},
        lambda p: {**p, "pi_a": ["0", "0", "1"]},
        lambda p: {**p, "pi_b": [["0", "0"], ["0", "0"], ["1", "0"]]},
        lambda p: {**p, "pi_c": ["1", "2", "1"]},
        lambda p: {**p, "pi_a": [str(2**384), p["pi_a"][1], "1"]},
        lambda p: {**p, "curve": "bn128"},
        lambda p: {**p, "protocol": "plonk"},
        lambda p: {**p, "extra": 1},
        lambda p: {k: v for k, v in p.items() if k != "pi_c"},
    ],
)
def test_malformed_proofs_are_refused(worker: NodeWorker, change) -> None:  # type: ignore[no-untyped-def]
    proof = _score(worker, 700, 650)
    with pytest.raises(ProofMalformed):
        Groth16Proof.parse(change(proof.proof))


def test_public_inputs_must_be_canonical_and_in_the_field(worker: NodeWorker) -> None:
    proof = _score(worker, 700, 650)
    commitment, threshold, binding = proof.public_signals
    for public in (
        [commitment, "0650", binding],
        [commitment, 650, binding],
        [commitment, str(650 + FIELD_MODULUS), binding],
        [commitment, threshold],
        [commitment, threshold, binding, "1"],
    ):
        with pytest.raises(ProofMalformed):
            _check("score_at_least", proof, public)  # type: ignore[arg-type]


def test_a_key_for_another_statement_refuses_the_proof(worker: NodeWorker) -> None:
    proof = _score(worker, 700, 650)
    with pytest.raises(ProofInvalid):
        verify(
            VerificationKey.parse(vkey_json("income_bracket_at_most")),
            Groth16Proof.parse(proof.proof),
            list(proof.public_signals),
        )


@settings(max_examples=4)
@given(
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**248 - 1),
    st.integers(0, 2**64 - 1),
)
def test_random_scores_and_thresholds(
    worker: NodeWorker, score: int, salt: int, theta: int
) -> None:
    # Also checks the circuit's Poseidon against the native one on random inputs: the proof
    # exists only if the circuit's hash of (score, salt) is commit(score, salt).
    inputs = {"commitment": commit(score, salt, worker=worker), "threshold": theta,
              "binding": BINDING, "value": score, "salt": salt}  # fmt: skip
    if score >= theta:
        _check("score_at_least", prove("score_at_least", inputs, worker=worker))
    else:
        with pytest.raises(ProvingFailed):
            prove("score_at_least", inputs, worker=worker)


def test_income_bracket_at_most(worker: NodeWorker) -> None:
    def attempt(income: int, limit: int) -> GeneratedProof:
        return prove(
            "income_bracket_at_most",
            {"commitment": commit(income, SALT, worker=worker), "limit": limit,
             "binding": BINDING, "value": income, "salt": SALT},
            worker=worker,
        )  # fmt: skip

    _check("income_bracket_at_most", attempt(300_000, 300_000))
    proof = attempt(120_000, 300_000)
    _check("income_bracket_at_most", proof)
    with pytest.raises(ProofInvalid):
        _check("income_bracket_at_most", proof, [proof.public_signals[0], "100000", str(BINDING)])
    with pytest.raises(ProvingFailed):
        attempt(300_001, 300_000)


def test_age_at_least_with_a_bounded_drift(worker: NodeWorker) -> None:
    def attempt(birth_day: int, today: int, min_age: int, drift: int) -> GeneratedProof:
        return prove(
            "age_at_least",
            {"commitment": commit(birth_day, SALT, worker=worker), "verifier_day": today,
             "min_age_days": min_age, "max_drift": drift, "binding": BINDING,
             "value": birth_day, "salt": SALT},
            worker=worker,
        )  # fmt: skip

    # Day numbers are proleptic Gregorian ordinals (date.toordinal(): 0001-01-01 is day 1), so
    # birth dates before 1970 stay positive.
    today = date(2026, 12, 6).toordinal()
    born = date(1966, 12, 6).toordinal()
    sixty = today - born  # exactly sixty years today
    _check("age_at_least", attempt(born, today, sixty, 0))  # exactly sixty today
    _check("age_at_least", attempt(born + 1, today, sixty, 1))  # one day short, drift 1
    with pytest.raises(ProvingFailed):
        attempt(born + 2, today, sixty, 1)  # two days short, drift 1
    proof = attempt(born, today, sixty, 0)
    public = list(proof.public_signals)
    public[1] = str(today - 1)  # the verifier's day moved back
    with pytest.raises(ProofInvalid):
        _check("age_at_least", proof, public)


def test_member_of_group(worker: NodeWorker, tmp_path: Path) -> None:
    groups = [101, 205, 333, 4_000_000_007]
    root = merkle_root(groups, worker=worker)
    path = merkle_path(groups, 333, worker=worker)

    def attempt(group: int, root: int, elements: tuple[int, ...]) -> GeneratedProof:
        return prove(
            "member_of_group",
            {"commitment": commit(group, SALT, worker=worker), "root": root, "binding": BINDING,
             "value": group, "salt": SALT, "path_elements": list(elements),
             "path_indices": list(path.indices)},
            worker=worker,
        )  # fmt: skip

    proof = attempt(333, root, path.elements)
    _check("member_of_group", proof)
    assert snarkjs_verifies("member_of_group", proof, tmp_path)
    other_root = merkle_root([101, 205, 334], worker=worker)
    with pytest.raises(ProofInvalid):
        _check("member_of_group", proof, [proof.public_signals[0], str(other_root), str(BINDING)])
    # 334 is not in the set: no path through the verifier's root proves it.
    with pytest.raises(ProvingFailed):
        attempt(334, root, path.elements)


def test_member_of_group_in_a_full_tree(worker: NodeWorker) -> None:
    # 2**GROUP_TREE_DEPTH ids fill the circuit's tree; the largest is its last leaf.
    groups = list(range(1, 2**GROUP_TREE_DEPTH + 1))
    path = merkle_path(groups, groups[-1], worker=worker)
    assert path.indices == (1,) * GROUP_TREE_DEPTH
    proof = prove(
        "member_of_group",
        {"commitment": commit(groups[-1], SALT, worker=worker),
         "root": merkle_root(groups, worker=worker), "binding": BINDING, "value": groups[-1],
         "salt": SALT, "path_elements": list(path.elements), "path_indices": list(path.indices)},
        worker=worker,
    )  # fmt: skip
    _check("member_of_group", proof)
