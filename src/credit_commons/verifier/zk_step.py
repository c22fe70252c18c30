"""Step 8 of the pipeline: the zero-knowledge predicates a request asked for (issue 18 §5;
seed 002 §6, ``verifyZkPredicates``), over one verified presentation.

For each predicate of the request whose DCQL credential query this presentation answers,
in order — each failure a :class:`~credit_commons.verifier.reasons.VerificationDenied`
with its own reason, for the verifier's record; the presenter sees ``not_allowed``:

1. the statement, from the registry: signed by the registry's key, its setup allowed here
   (production refuses ``dev``), every artefact re-hashed (``zk_statement_unknown``,
   ``zk_setup_not_allowed``, ``zk_artefact_mismatch``);
2. the proof: present in the response's ``zk_proofs`` under the predicate's id, for that
   statement, with as many public signals as the statement's inputs, each a decimal field
   element (``zk_proof_missing``, ``zk_proof_malformed``); never accepted before
   (``zk_proof_replayed``: the SHA-256 of the proof is one-time);
3. the bindings: the ``binding`` input is the one recomputed from this transaction's nonce,
   audience (client identifier) and request hash (``zk_binding_mismatch``);
4. the parameter constraints: each ``param`` input equals the request's value — the
   verifier's policy: a proof for θ′ < θ is no proof for θ — a ``set_root`` input the root
   of the request's set, a ``constant`` the statement's, a ``verifier_day`` input within its
   drift of today here (``zk_param_mismatch``, ``zk_day_drift``);
5. the commitment linkage: the presented credential is of the statement's type and its
   issuer-signed ``zk_commitments`` claim holds, under the statement's name, the proof's
   commitment input (``zk_commitment_mismatch``);
6. the proof itself, by the engine's Groth16 verifier (``zk_proof_invalid``).

The checks before 6 are cheap comparisons; the pairing check runs only when they all hold.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from credit_commons.core.encoding import JsonObject, canonical_json
from credit_commons.core.errors import CommonsError
from credit_commons.verifier.reasons import Reason, VerificationDenied
from credit_commons.zk import (
    ArtefactMismatch,
    Groth16Proof,
    LoadedStatement,
    SetupNotAllowed,
    StatementNotFound,
    StatementSignatureInvalid,
    VerificationKey,
    request_binding,
    set_root,
    verify_groth16,
)

__all__ = ["ZkCheck", "ZkPredicate", "check_predicates", "parse_predicates", "proof_digest"]


@dataclass(frozen=True, slots=True)
class ZkPredicate:
    """A predicate a transaction asked for: its id, statement, the credential query whose
    credential holds the commitment, and its parameters (the verifier's policy values)."""

    id: str
    statement: str
    credential_query_id: str
    params: Mapping[str, int | tuple[str, ...]]

    def to_json(self) -> JsonObject:
        """The predicate as stored with its transaction and sent in the request."""
        return {
            "id": self.id,
            "statement": self.statement,
            "credential_query_id": self.credential_query_id,
            "params": {k: v if isinstance(v, int) else list(v) for k, v in self.params.items()},
        }


def parse_predicates(stored: Any) -> tuple[ZkPredicate, ...]:
    """The predicates of a transaction as stored (a JSON array of :meth:`ZkPredicate.to_json`
    objects).  A request made before predicates were supported stored only names: such an
    entry is a predicate of no statement (refused ``zk_statement_unknown``)."""
    found = []
    for item in stored if isinstance(stored, list) else []:
        if isinstance(item, str):
            found.append(ZkPredicate(item, item, "", {}))
            continue
        params = {k: v if isinstance(v, int) else tuple(v) for k, v in dict(item["params"]).items()}
        found.append(
            ZkPredicate(item["id"], item["statement"], item["credential_query_id"], params)
        )
    return tuple(found)


@dataclass(frozen=True, slots=True)
class ZkCheck:
    """What step 8 needs of its transaction and response: the predicates, the proofs sent
    (by predicate id), the binding's members, the verifier's day number, the registry
    (a statement id to its loaded statement), and whether a proof digest was used before."""

    predicates: tuple[ZkPredicate, ...]
    proofs: JsonObject
    nonce: str
    audience: str
    request_hash: str
    today: int
    load: Callable[[str], LoadedStatement]
    used: Callable[[str], bool]


def proof_digest(proof: Any) -> str:
    """The SHA-256 (hex) of a proof object's canonical JSON (RFC 8785): its one-time id."""
    return hashlib.sha256(canonical_json(proof)).hexdigest()


def _deny(reason: Reason, detail: str) -> VerificationDenied:
    return VerificationDenied(reason, detail)


def _statement(check: ZkCheck, predicate: ZkPredicate) -> LoadedStatement:
    # 1. The registry's statement.
    try:
        return check.load(predicate.statement)
    except StatementNotFound as e:
        raise _deny(Reason.ZK_STATEMENT_UNKNOWN, f"{predicate.id}: no such statement") from e
    except SetupNotAllowed as e:
        raise _deny(Reason.ZK_SETUP_NOT_ALLOWED, f"{predicate.id}: {e.detail}") from e
    except (ArtefactMismatch, StatementSignatureInvalid) as e:
        raise _deny(Reason.ZK_ARTEFACT_MISMATCH, f"{predicate.id}: {e.detail}") from e


_DECIMAL = re.compile(r"0|[1-9][0-9]{0,79}")


def _signals(check: ZkCheck, predicate: ZkPredicate, count: int) -> tuple[JsonObject, list[str]]:
    # 2. The proof sent for this predicate, its public signals canonical decimal strings.
    sent = check.proofs.get(predicate.id)
    if not isinstance(sent, dict):
        raise _deny(Reason.ZK_PROOF_MISSING, f"{predicate.id}: no proof")
    proof, signals = sent.get("proof"), sent.get("public_signals")
    if (
        sent.get("statement") != predicate.statement
        or not isinstance(proof, dict)
        or not isinstance(signals, list)
        or len(signals) != count
        or not all(isinstance(s, str) and _DECIMAL.fullmatch(s) for s in signals)
    ):
        raise _deny(Reason.ZK_PROOF_MALFORMED, f"{predicate.id}: not a proof of this statement")
    if check.used(proof_digest(proof)):
        raise _deny(Reason.ZK_PROOF_REPLAYED, f"{predicate.id}: the proof was used before")
    return proof, list(signals)


def _inputs(
    check: ZkCheck, predicate: ZkPredicate, loaded: LoadedStatement, values: list[int]
) -> None:
    # 3 and 4. The binding, then each parameter against the request's.
    statement = loaded.statement
    for spec, value in zip(statement.public_inputs, values, strict=True):
        if spec.source == "binding":
            expected = request_binding(
                nonce=check.nonce, audience=check.audience, request_hash=check.request_hash
            )
            if value != expected:
                raise _deny(Reason.ZK_BINDING_MISMATCH, f"{predicate.id}: bound to another request")
        elif spec.source == "constant" and value != spec.value:
            raise _deny(
                Reason.ZK_PARAM_MISMATCH, f"{predicate.id}: {spec.name} is not the statement's"
            )
        elif spec.source == "param":
            wanted = predicate.params.get(spec.param or "")
            if not isinstance(wanted, int) or value != wanted:
                raise _deny(
                    Reason.ZK_PARAM_MISMATCH, f"{predicate.id}: {spec.name} is not the policy's"
                )
        elif spec.source == "set_root":
            members = predicate.params.get(spec.param or "")
            if not isinstance(members, tuple) or value != set_root(members):
                raise _deny(
                    Reason.ZK_PARAM_MISMATCH, f"{predicate.id}: {spec.name} is not the set's"
                )
        elif spec.source == "verifier_day" and abs(value - check.today) > (
            spec.max_drift_days or 0
        ):
            raise _deny(Reason.ZK_DAY_DRIFT, f"{predicate.id}: {spec.name} is too far from today")


def _linkage(
    predicate: ZkPredicate, loaded: LoadedStatement, vct: str, claims: JsonObject, value: int
) -> None:
    # 5. The proof's commitment is the one the issuer signed in the presented credential.
    binding = loaded.statement.credential
    commitments = claims.get("zk_commitments")
    signed = commitments.get(binding.commitment) if isinstance(commitments, dict) else None
    if vct != binding.vct or not isinstance(signed, str) or signed != str(value):
        raise _deny(Reason.ZK_COMMITMENT_MISMATCH, f"{predicate.id}: not the issuer's commitment")


def check_predicates(
    check: ZkCheck, query_id: str, vct: str, claims: JsonObject
) -> tuple[str, ...]:
    """Step 8 for one presentation answering DCQL query ``query_id`` (type ``vct``, its
    disclosed ``claims``): every predicate on that query, as the module says.  Returns the
    digests of the proofs it accepted (for the decision to mark used).

    Raises :class:`VerificationDenied` with the failing check's reason.
    """
    accepted = []
    for predicate in check.predicates:
        if predicate.credential_query_id != query_id:
            continue
        loaded = _statement(check, predicate)
        proof, signals = _signals(check, predicate, len(loaded.statement.public_inputs))
        values = [int(s) for s in signals]
        _inputs(check, predicate, loaded, values)
        commitment = values[loaded.statement.input_index("commitment")]
        _linkage(predicate, loaded, vct, claims, commitment)
        try:  # 6. the proof
            key = VerificationKey.parse(loaded.verification_key)
            verify_groth16(key, Groth16Proof.parse(proof), signals)
        except CommonsError as e:
            raise _deny(Reason.ZK_PROOF_INVALID, f"{predicate.id}: {e.detail}") from e
        accepted.append(proof_digest(proof))
    return tuple(accepted)


def check_answered(check: ZkCheck, answered: Sequence[str]) -> None:
    """Every predicate was checked on a presentation that was not discarded (``answered``:
    the query ids of the verified presentations).

    Raises :class:`VerificationDenied` (``zk_proof_missing``).
    """
    for predicate in check.predicates:
        if predicate.credential_query_id not in answered:
            raise _deny(Reason.ZK_PROOF_MISSING, f"{predicate.id}: its credential was not shown")
