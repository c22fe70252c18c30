"""The zero-knowledge layer's errors: one class per refusal, each a :class:`CommonsError`."""

from __future__ import annotations

from credit_commons.core.errors import (
    CommonsError,
    ExitCode,
    IntegrityError,
    UnavailableError,
    ValidationError,
)

__all__ = [
    "FieldElementInvalid",
    "NodeUnavailable",
    "ProofInvalid",
    "ProofMalformed",
    "ProvingFailed",
    "ZkError",
]


class ZkError(CommonsError):
    """Root of the zero-knowledge layer's errors."""

    code = "zk.error"
    title = "Zero-knowledge error"
    status = 500
    exit_code = ExitCode.FAILURE


class FieldElementInvalid(ValidationError, ZkError):
    """A value is not a canonical element of the BLS12-381 scalar field (or out of its bound)."""

    code = "zk.field_element_invalid"
    title = "Invalid field element"


class NodeUnavailable(UnavailableError, ZkError):
    """Node.js or the zk Node packages (snarkjs, @noble/curves) are missing or failed to start."""

    code = "zk.node_unavailable"
    title = "The zero-knowledge tooling (Node.js) is unavailable"


class ProvingFailed(ZkError):
    """The prover could not produce a proof: the witness does not satisfy the circuit.

    That is what an honest prover meets when the statement is false (a score below θ).
    """

    code = "zk.proving_failed"
    title = "The statement could not be proved"
    status = 422
    exit_code = ExitCode.VALIDATION


class ProofMalformed(IntegrityError, ZkError):
    """A proof or verification key is not well formed (shape, encoding, curve or subgroup)."""

    code = "zk.proof_malformed"
    title = "Malformed proof"


class ProofInvalid(IntegrityError, ZkError):
    """A well-formed proof does not verify against the key and the public inputs."""

    code = "zk.proof_invalid"
    title = "Invalid proof"
