"""Proving a registry statement: its inputs, named and ordered by the statement, handed to the
engine's prover (``zk/prover.py``: snarkjs ``groth16.prove`` in a warm Node process).

The circuit's public signals are the statement's ``public_inputs`` (same names, same
order); its private inputs are the committed ``value`` and its ``salt`` (and, for a
``set_root`` input, the Merkle path of the value in the set).  The artefacts are the
engine's package data, re-hashed against the statement before they are used.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from credit_commons.zk.merkle import merkle_path, merkle_root
from credit_commons.zk.prover import prove
from credit_commons.zk.registry import ARTEFACTS, artefact_files
from credit_commons.zk.registry_claims import string_id
from credit_commons.zk.statement import ArtefactMismatch, Statement

__all__ = ["prove_statement", "set_root"]

#: The files the engine's prover reads for a statement (``zk/prover.py``).
_SUFFIXES = {"wasm": ".wasm", "zkey": ".zkey", "vkey": ".vkey.json"}


def prove_statement(
    statement: Statement,
    *,
    value: int,
    salt: int,
    commitment: int,
    params: Mapping[str, int | tuple[str, ...]],
    binding: int,
    today: int,
    artefacts: Path | None = None,
) -> tuple[dict[str, object], list[int]]:
    """A proof of ``statement`` for the committed ``value`` (and ``salt``) with ``params``,
    bound by ``binding``: the snarkjs proof object and the public signals.

    Raises :class:`ArtefactMismatch`, ``ProvingFailed`` (the value does not satisfy the
    statement: no proof exists), ``FieldElementInvalid`` (a value not in a set) and
    ``NodeUnavailable``.
    """
    directory = artefacts or ARTEFACTS
    paths = artefact_files(statement, directory)  # re-hashed against the statement
    expected = {role: directory / f"{statement.id}{suffix}" for role, suffix in _SUFFIXES.items()}
    if any(paths[role] != path for role, path in expected.items()):
        raise ArtefactMismatch(f"the artefacts of {statement.id} are not the engine's circuit")
    inputs: dict[str, object] = {"value": value, "salt": salt}
    for spec in statement.public_inputs:
        if spec.source == "commitment":
            inputs[spec.name] = commitment
        elif spec.source == "binding":
            inputs[spec.name] = binding
        elif spec.source == "verifier_day":
            inputs[spec.name] = today
        elif spec.source == "param":
            inputs[spec.name] = params[spec.param or ""]
        elif spec.source == "constant":
            inputs[spec.name] = spec.value
        else:  # set_root: the root, and the value's path in the set
            members = params[spec.param or ""]
            ids = [string_id(m) for m in members] if isinstance(members, tuple) else []
            path = merkle_path(ids, value)
            inputs[spec.name] = set_root(members)
            inputs["path_elements"], inputs["path_indices"] = path.elements, path.indices
    generated = prove(statement.id, inputs, artefacts_dir=directory)
    return dict(generated.proof), [int(s) for s in generated.public_signals]


def set_root(members: object) -> int:
    """The root of the group tree of a set parameter (strings: their ``string_id``s).

    Raises ``FieldElementInvalid`` for an empty or oversized set.
    """
    ids = [string_id(m) for m in members] if isinstance(members, tuple | list) else []
    return merkle_root(ids)
