"""Step 8's refusals that come before any proof is read (verifier/zk_step.py): the registry's
answer for the statement decides the reason — no such statement, a ``dev`` setup in
production, an artefact or a signature that is not the registry's — and a predicate whose
credential query was not answered is refused ``zk_proof_missing``."""

from __future__ import annotations

import pytest

from credit_commons.core.errors import CommonsError
from credit_commons.verifier.reasons import Reason, VerificationDenied
from credit_commons.verifier.zk_step import (
    ZkCheck,
    ZkPredicate,
    check_answered,
    check_predicates,
    parse_predicates,
)
from credit_commons.zk import (
    ArtefactMismatch,
    LoadedStatement,
    SetupNotAllowed,
    StatementNotFound,
    StatementSignatureInvalid,
)

PREDICATE = ZkPredicate("score", "score_at_least", "crc", {"threshold": 650})


def _check(error: CommonsError) -> ZkCheck:
    def load(statement_id: str) -> LoadedStatement:
        assert statement_id == "score_at_least"
        raise error

    return ZkCheck(
        predicates=(PREDICATE,),
        proofs={},
        nonce="n",
        audience="a",
        request_hash="h",
        today=1,
        load=load,
        used=lambda _digest: False,
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (StatementNotFound("x"), Reason.ZK_STATEMENT_UNKNOWN),
        (SetupNotAllowed("production refuses the dev setup"), Reason.ZK_SETUP_NOT_ALLOWED),
        (ArtefactMismatch("the vkey differs"), Reason.ZK_ARTEFACT_MISMATCH),
        (StatementSignatureInvalid("x"), Reason.ZK_ARTEFACT_MISMATCH),
    ],
)
def test_the_registry_decides_first(error: CommonsError, reason: Reason) -> None:
    with pytest.raises(VerificationDenied) as denied:
        check_predicates(_check(error), "crc", "urn:vct", {})
    assert denied.value.reason is reason


def test_a_predicate_on_another_query_is_not_this_presentations() -> None:
    assert check_predicates(_check(StatementNotFound("x")), "other", "urn:vct", {}) == ()


def test_every_predicate_needs_its_presentation() -> None:
    check = _check(StatementNotFound("x"))
    check_answered(check, ["crc"])
    with pytest.raises(VerificationDenied) as denied:
        check_answered(check, ["other"])
    assert denied.value.reason is Reason.ZK_PROOF_MISSING


def test_stored_predicates_round_trip_and_old_names_are_no_statement() -> None:
    assert parse_predicates([PREDICATE.to_json()]) == (PREDICATE,)
    (old,) = parse_predicates(["score_gte_650"])
    assert (old.statement, old.credential_query_id) == ("score_gte_650", "")
    assert parse_predicates("not a list") == ()
