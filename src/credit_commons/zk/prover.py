"""Proving a statement: the circuit's witness, then snarkjs ``groth16.prove``, in the zk Node
worker.

The cryptography is circom_runtime's (the witness, by the circuit's circom-compiled WASM, as
snarkjs's ``fullProve`` computes it) and snarkjs's (the Groth16 prover over BLS12-381); this
module checks the statement name, hands the inputs and the artefacts' paths to the warm worker
(:mod:`credit_commons.zk.node`, ~0.3 s a proof instead of ~1 s of CLI start-up; it keeps each
circuit's compiled WASM and proving key in memory until a file changes) and translates
failures.  An input that does not satisfy the circuit (a score below θ) fails witness
generation: :class:`ProvingFailed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from credit_commons.core.encoding import JsonObject
from credit_commons.zk.errors import ProvingFailed, ZkError
from credit_commons.zk.node import NodeWorker
from credit_commons.zk.poseidon import default_worker

__all__ = ["ARTEFACTS_DIR", "STATEMENTS", "GeneratedProof", "prove"]

ARTEFACTS_DIR = Path(__file__).resolve().parent / "artefacts"
"""The committed dev artefacts, plain file names in one folder: ``<statement>.wasm``,
``<statement>.zkey``, ``<statement>.vkey.json`` and ``manifest.json`` with their SHA-256
(scripts/zk-setup.sh).  The statement registry pins and re-hashes them before use."""

STATEMENTS = (
    "score_at_least",
    "income_bracket_at_most",
    "age_at_least",
    "member_of_group",
    "community_score_at_least",
)
"""The statements with circuits, in the order docs/zk.md describes them."""


@dataclass(frozen=True, slots=True)
class GeneratedProof:
    """snarkjs's proof JSON and the public inputs (decimal strings, in the circuit's order)."""

    proof: JsonObject
    public_signals: tuple[str, ...]


def _input_value(value: object) -> object:
    if isinstance(value, bool):
        raise ZkError("a circuit input is an integer, not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return [_input_value(v) for v in value]
    raise ZkError("a circuit input is an integer or a list of integers")


def prove(
    statement: str,
    inputs: Mapping[str, object],
    *,
    worker: NodeWorker | None = None,
    artefacts_dir: Path = ARTEFACTS_DIR,
) -> GeneratedProof:
    """Prove ``statement`` for the circuit inputs (public and private, by signal name).

    Raises :class:`ZkError` for an unknown statement or a non-integer input,
    :class:`ProvingFailed` when the inputs do not satisfy the circuit, and
    :class:`NodeUnavailable` when the Node tooling is missing.
    """
    if statement not in STATEMENTS:
        raise ZkError(f"no circuit for the statement {statement!r}")
    request: JsonObject = {
        "op": "prove",
        "wasm": str(artefacts_dir / f"{statement}.wasm"),
        "zkey": str(artefacts_dir / f"{statement}.zkey"),
        "input": {name: _input_value(value) for name, value in inputs.items()},
    }
    reply = (worker or default_worker()).call(request)
    if reply.get("ok") is not True:
        raise ProvingFailed(
            "the inputs do not satisfy the statement's circuit",
            extra={"statement": statement},
        )
    signals = reply.get("publicSignals")
    if not isinstance(reply.get("proof"), dict) or not isinstance(signals, list):
        raise ZkError("the prover answered without a proof")
    return GeneratedProof(proof=reply["proof"], public_signals=tuple(str(s) for s in signals))
