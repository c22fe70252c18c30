"""Zero-knowledge predicates over committed claims (issue 18): the engine.

API note (for the statement registry, issuance, wallet and verifier built on top):

- ``commit(value, salt) -> int`` and ``new_salt()``: ``C = Poseidon(value, salt)`` over the
  BLS12-381 scalar field; values in ``[0, 2**VALUE_BITS)``, salts of ``SALT_BITS`` bits.
- ``encode_element`` / ``decode_element``: a field element in JSON is its canonical decimal
  string (no sign, no leading zero, below ``FIELD_MODULUS``); decoding refuses anything else.
- ``hash2`` / ``permute`` / ``POSEIDON``: the Poseidon instance ``poseidonperm_x5_255_3``.
- ``NodeWorker``: the warm Node process that runs @noble/curves and snarkjs; the functions
  above take ``worker=`` and default to one process-wide worker.

The statement registry (``registry``, ``statement``): signed statements with their
artefacts' hashes, loaded for the wallet and the verifier (docs/zk.md).

The cryptography is done by libraries: @noble/curves (Poseidon and its Grain-LFSR constants),
snarkjs (Groth16 proving), py-arkworks-bls12381 (pairings for verification).  docs/zk.md says
what is proved, the parameters and the trust assumptions.
"""

from __future__ import annotations

from credit_commons.zk.commitment import (
    SALT_BITS,
    VALUE_BITS,
    commit,
    new_salt,
    require_salt,
    require_value,
)
from credit_commons.zk.errors import (
    FieldElementInvalid,
    NodeUnavailable,
    ProofInvalid,
    ProofMalformed,
    ProvingFailed,
    ZkError,
)
from credit_commons.zk.field import FIELD_MODULUS, decode_element, encode_element, require_element
from credit_commons.zk.node import NODE_DIR, NodeWorker
from credit_commons.zk.poseidon import POSEIDON, PoseidonInstance, default_worker, hash2, permute
from credit_commons.zk.registry import (
    LoadedStatement,
    get_statement,
    list_statements,
    load_statement,
    register_statement,
    statements_for_vct,
)
from credit_commons.zk.statement import (
    ArtefactMismatch,
    SetupNotAllowed,
    Statement,
    StatementInvalid,
    StatementNotFound,
    StatementSignatureInvalid,
    parse_statement,
)

__all__ = [
    "FIELD_MODULUS",
    "NODE_DIR",
    "POSEIDON",
    "SALT_BITS",
    "VALUE_BITS",
    "ArtefactMismatch",
    "FieldElementInvalid",
    "LoadedStatement",
    "NodeUnavailable",
    "NodeWorker",
    "PoseidonInstance",
    "ProofInvalid",
    "ProofMalformed",
    "ProvingFailed",
    "SetupNotAllowed",
    "Statement",
    "StatementInvalid",
    "StatementNotFound",
    "StatementSignatureInvalid",
    "ZkError",
    "commit",
    "decode_element",
    "default_worker",
    "encode_element",
    "get_statement",
    "hash2",
    "list_statements",
    "load_statement",
    "new_salt",
    "parse_statement",
    "permute",
    "register_statement",
    "require_element",
    "require_salt",
    "require_value",
    "statements_for_vct",
]
