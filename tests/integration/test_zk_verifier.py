"""Step 8 of the verifier pipeline (issue 18 §5, "Soundness and completeness tests"), on
SQLite and PostgreSQL, over HTTP: a lender asks for ``score_at_least`` θ = 650 beside its
DCQL query; the holder's credential carries the issuer-signed commitment to its score; the
proof is made by the wallet's prover (``wallet/zk_proofs.py``) and posted as ``zk_proofs``.

Accepted at the boundary (score = θ) and above, with a decision record that holds the
commitment and no score.  Refused — the wire always ``not_allowed``, the precise reason in
the record: a tampered proof, a changed public input, a proof for θ′ < θ offered for θ, a
proof for another nonce, audience or request, a replayed proof, a commitment not signed in
the presented credential, a missing proof, an artefact whose hash is not the registry's.
A score below θ cannot be proved at all.
"""

from __future__ import annotations

import copy
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.verifier_world import Holder, VpWorld, crc_query, vp

from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject
from credit_commons.wallet.store import StoredCredential
from credit_commons.wallet.zk_proofs import PredicateUnprovable, prove
from credit_commons.zk import registry

__all__ = ["vp"]

DENIED = {"error": "not_allowed"}
THETA = 650


@pytest.fixture(autouse=True)
def _statements(vp: VpWorld) -> None:
    with transaction(vp.rt.sessions) as session:
        registry.register_dev_statements(session, vp.rt, actor=vp.rt.operator_actor("zk"))


def _predicate(theta: int = THETA, query_id: str = "crc") -> dict[str, Any]:
    return {
        "id": "score",
        "statement": "score_at_least",
        "credential_query_id": query_id,
        "params": {"threshold": theta},
    }


def _ask(vp: VpWorld, theta: int = THETA) -> dict[str, Any]:
    return vp.request(dcql_query=crc_query("zk_commitments"), zk_predicates=[_predicate(theta)])


def _stored(holder: Holder) -> StoredCredential:
    return StoredCredential("c1", "https://commons.test", "CRC", holder.credential, "now")


def _proof(
    vp: VpWorld,
    holder: Holder,
    request: Any,
    *,
    theta: int = THETA,
    nonce: str | None = None,
    audience: str | None = None,
    request_hash: str | None = None,
) -> JsonObject:
    with transaction(vp.rt.sessions) as session:
        statement = registry.get_statement(session, vp.rt, "score_at_least")[1]
    return prove(
        _stored(holder),
        statement,
        {"threshold": theta},
        nonce=nonce or request.nonce,
        audience=audience or request.client_id,
        request_hash=request_hash or request.zk_request_hash,
        today=datetime.now(UTC).date(),
    )


def _post(
    vp: VpWorld, created: dict[str, Any], request: Any, holder: Holder, proofs: JsonObject | None
) -> httpx.Response:
    shown = vp.presentation(holder, request, disclose=())
    form: dict[str, str] = {"vp_token": json.dumps({"crc": [shown]}), "state": request.state}
    if proofs is not None:
        form["zk_proofs"] = json.dumps(proofs)
    return vp.respond(created, request, None, form=form)


def _leaves(node: Any) -> list[Any]:
    """Every scalar in a JSON value (a score is found as a value, not as digits of a C)."""
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _leaves(value)]
    if isinstance(node, list):
        return [leaf for value in node for leaf in _leaves(value)]
    return [node]


def _denied(vp: VpWorld, created: dict[str, Any], answered: httpx.Response, reason: str) -> None:
    assert answered.status_code == 400, answered.text
    assert answered.json() == DENIED
    status = vp.status(created["id"])
    assert (status["decision"], status["reason"]) == ("deny", reason)
    assert status["discarded"] == [{"query_id": "crc", "reason": reason}]


@pytest.mark.parametrize("score", [THETA, 900])
def test_an_honest_proof_at_the_boundary_and_above_is_accepted(vp: VpWorld, score: int) -> None:
    holder = vp.holder(score=score)
    created = _ask(vp)
    request = vp.wallet_request(created)
    assert request.zk_request_hash is not None
    answered = _post(vp, created, request, holder, {"score": _proof(vp, holder, request)})
    assert answered.status_code == 200, str(vp.status(created["id"]))[-200:]
    status = vp.status(created["id"])
    assert (status["decision"], status["reason"]) == ("allow", None)
    # The verifier's record: the commitment, never the score.
    code = answered.json()["redirect_uri"].split("response_code=")[1]
    decided = vp.decision(created["id"], code).json()
    (claims,) = [c["claims"] for c in decided["credentials"]]
    assert "zk_commitments" in claims
    assert "score_opening" not in claims
    assert "zk_openings" not in claims
    assert score not in _leaves(decided)
    assert str(score) not in _leaves(decided)


def test_a_score_below_the_threshold_cannot_be_proved(vp: VpWorld) -> None:
    holder = vp.holder(score=THETA - 1)
    request = vp.wallet_request(_ask(vp))
    with pytest.raises(PredicateUnprovable):
        _proof(vp, holder, request)


def test_a_proof_for_a_lower_threshold_is_refused(vp: VpWorld) -> None:
    holder = vp.holder(score=THETA - 1)
    created = _ask(vp)
    request = vp.wallet_request(created)
    lower = _proof(vp, holder, request, theta=600)  # true, but not what was asked
    _denied(vp, created, _post(vp, created, request, holder, {"score": lower}), "zk_param_mismatch")


@pytest.mark.parametrize(
    ("bound", "reason"),
    [
        ({"nonce": "another-nonce-0123456789abcdef"}, "zk_binding_mismatch"),
        ({"audience": "redirect_uri:https://other.example/cb"}, "zk_binding_mismatch"),
        ({"request_hash": "0" * 64}, "zk_binding_mismatch"),
    ],
)
def test_a_proof_for_another_request_is_refused(
    vp: VpWorld, bound: dict[str, str], reason: str
) -> None:
    holder = vp.holder(score=800)
    created = _ask(vp)
    request = vp.wallet_request(created)
    other = _proof(vp, holder, request, **bound)
    _denied(vp, created, _post(vp, created, request, holder, {"score": other}), reason)


def _tampered_proof(proof: JsonObject) -> JsonObject:
    # A and C swapped: both still points of the curve's subgroup, the equation fails.
    changed = copy.deepcopy(proof)
    inner = changed["proof"]
    inner["pi_a"], inner["pi_c"] = inner["pi_c"], inner["pi_a"]
    return changed


def test_a_tampered_proof_or_public_input_is_refused(vp: VpWorld) -> None:
    holder = vp.holder(score=800)
    for change, reason in (
        (_tampered_proof, "zk_proof_invalid"),
        (
            lambda p: {
                **p,
                "public_signals": [p["public_signals"][0], "651", p["public_signals"][2]],
            },
            "zk_param_mismatch",
        ),
        (
            lambda p: {
                **p,
                "public_signals": [str(int(p["public_signals"][0]) + 1), *p["public_signals"][1:]],
            },
            "zk_commitment_mismatch",
        ),
        (lambda p: {**p, "public_signals": p["public_signals"][:2]}, "zk_proof_malformed"),
    ):
        created = _ask(vp)
        request = vp.wallet_request(created)
        proof = change(_proof(vp, holder, request))
        _denied(vp, created, _post(vp, created, request, holder, {"score": proof}), reason)


def test_a_replayed_proof_is_refused(vp: VpWorld) -> None:
    holder = vp.holder(score=800)
    created = _ask(vp)
    request = vp.wallet_request(created)
    proof = _proof(vp, holder, request)
    assert _post(vp, created, request, holder, {"score": proof}).status_code == 200
    again = _ask(vp)
    request_again = vp.wallet_request(again)
    _denied(
        vp, again, _post(vp, again, request_again, holder, {"score": proof}), "zk_proof_replayed"
    )


def test_a_commitment_not_signed_in_the_presented_credential_is_refused(vp: VpWorld) -> None:
    prover, shown = vp.holder(score=800), vp.holder(score=400)
    created = _ask(vp)
    request = vp.wallet_request(created)
    borrowed = _proof(vp, prover, request)  # another holder's commitment
    answered = _post(vp, created, request, shown, {"score": borrowed})
    _denied(vp, created, answered, "zk_commitment_mismatch")


def test_a_missing_proof_is_refused(vp: VpWorld) -> None:
    holder = vp.holder(score=800)
    created = _ask(vp)
    request = vp.wallet_request(created)
    _denied(vp, created, _post(vp, created, request, holder, None), "zk_proof_missing")


def test_an_artefact_whose_hash_is_not_the_registrys_is_refused(
    vp: VpWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = vp.holder(score=800)
    created = _ask(vp)
    request = vp.wallet_request(created)
    proof = _proof(vp, holder, request)
    copied = tmp_path / "artefacts"
    shutil.copytree(registry.ARTEFACTS, copied)
    (copied / "score_at_least.vkey.json").write_text('{"protocol": "groth16"}')
    monkeypatch.setattr(registry, "ARTEFACTS", copied)
    _denied(
        vp, created, _post(vp, created, request, holder, {"score": proof}), "zk_artefact_mismatch"
    )
