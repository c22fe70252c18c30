"""Zero-knowledge predicates over committed claims (issue 18): the engine.

API note (for the statement registry, issuance, wallet and verifier built on top):

- ``commit(value, salt) -> int`` and ``new_salt()``: ``C = Poseidon(value, salt)`` over the
  BLS12-381 scalar field; values in ``[0, 2**VALUE_BITS)``, salts of ``SALT_BITS`` bits.
- ``encode_element`` / ``decode_element``: a field element in JSON is its canonical decimal
  string (no sign, no leading zero, below ``FIELD_MODULUS``); decoding refuses anything else.
- ``hash2`` / ``permute`` / ``POSEIDON``: the Poseidon instance ``poseidonperm_x5_255_3``.
- ``request_binding(nonce=, audience=, request_hash=)``: the public ``binding`` every proof
  carries (SHA-256 of the JCS of the three strings, mod r); the verifier recomputes it.
- ``merkle_root(ids)`` / ``merkle_path(ids, id)``: the Poseidon tree (depth 8) of a
  verifier's group ids, for ``member_of_group``.
- ``prove(statement, inputs) -> GeneratedProof`` (snarkjs in the worker; ``ProvingFailed``
  when the statement is false) with the committed dev artefacts in ``ARTEFACTS_DIR``
  (``manifest.json`` holds their SHA-256); ``STATEMENTS`` names the four circuits and their
  public inputs are, in order: score_at_least [commitment, threshold, binding];
  income_bracket_at_most [commitment, limit, binding]; age_at_least [commitment,
  verifier_day, min_age_days, max_drift, binding]; member_of_group [commitment, root,
  binding].  Private inputs: ``value``, ``salt`` (and ``path_elements``, ``path_indices``).
- ``VerificationKey.parse`` / ``Groth16Proof.parse`` / ``verify_groth16(key, proof,
  public_signals)``: strict parsing and the pairing check (arkworks); raises
  ``ProofMalformed`` or ``ProofInvalid``, returns ``None`` when the proof verifies.
- ``NodeWorker``: the warm Node process that runs @noble/curves and snarkjs; the functions
  above take ``worker=`` and default to one process-wide worker.

The statement registry (``registry``, ``statement``): signed statements with their
artefacts' hashes, loaded for the wallet and the verifier (docs/zk.md).  ``KYC_VCT``,
``SHG_VCT`` and ``CREDIT_READINESS_VCT`` are the credential types the engine's statements
read (the catalogue's built-in types take their ``vct`` from them).

The cryptography is done by libraries: @noble/curves (Poseidon and its Grain-LFSR constants),
snarkjs (Groth16 proving), py-arkworks-bls12381 (pairings for verification).  docs/zk.md says
what is proved, the parameters and the trust assumptions.
"""

from __future__ import annotations

from credit_commons.zk.binding import request_binding
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
from credit_commons.zk.groth16 import Groth16Proof, VerificationKey
from credit_commons.zk.groth16 import verify as verify_groth16
from credit_commons.zk.merkle import GROUP_TREE_DEPTH, MerklePath, merkle_path, merkle_root
from credit_commons.zk.node import NODE_DIR, NodeWorker
from credit_commons.zk.poseidon import POSEIDON, PoseidonInstance, default_worker, hash2, permute
from credit_commons.zk.prover import ARTEFACTS_DIR, STATEMENTS, GeneratedProof, prove
from credit_commons.zk.registry import (
    LoadedStatement,
    get_statement,
    list_statements,
    load_statement,
    proof_used,
    record_proof_uses,
    register_dev_statements,
    register_statement,
    statements_for_vct,
)
from credit_commons.zk.registry_claims import (
    COMMITMENTS_CLAIM,
    OPENINGS_CLAIM,
    ClaimNotProvable,
    claim_value,
    commit_claims,
    day_number,
    opening,
    opening_paths,
    string_id,
)
from credit_commons.zk.registry_dev import (
    COMMUNITY_TIER_VCT,
    CREDIT_READINESS_VCT,
    KYC_VCT,
    SHG_VCT,
)
from credit_commons.zk.registry_prove import prove_statement, set_root
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
    "ARTEFACTS_DIR",
    "COMMITMENTS_CLAIM",
    "COMMUNITY_TIER_VCT",
    "CREDIT_READINESS_VCT",
    "FIELD_MODULUS",
    "GROUP_TREE_DEPTH",
    "KYC_VCT",
    "NODE_DIR",
    "OPENINGS_CLAIM",
    "POSEIDON",
    "SALT_BITS",
    "SHG_VCT",
    "STATEMENTS",
    "VALUE_BITS",
    "ArtefactMismatch",
    "ClaimNotProvable",
    "FieldElementInvalid",
    "GeneratedProof",
    "Groth16Proof",
    "LoadedStatement",
    "MerklePath",
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
    "VerificationKey",
    "ZkError",
    "claim_value",
    "commit",
    "commit_claims",
    "day_number",
    "decode_element",
    "default_worker",
    "encode_element",
    "get_statement",
    "hash2",
    "list_statements",
    "load_statement",
    "merkle_path",
    "merkle_root",
    "new_salt",
    "opening",
    "opening_paths",
    "parse_statement",
    "permute",
    "proof_used",
    "prove",
    "prove_statement",
    "record_proof_uses",
    "register_dev_statements",
    "register_statement",
    "request_binding",
    "require_element",
    "require_salt",
    "require_value",
    "set_root",
    "statements_for_vct",
    "string_id",
    "verify_groth16",
]
