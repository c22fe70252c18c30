"""Issue 18's "Done when", over HTTP on SQLite and PostgreSQL: a lender asks through
OpenID4VP for ``score_at_least`` θ = 650; the borrower's wallet (``wallet/oid4vp.py``)
reads the request, presents its Credit Readiness Credential disclosing only the issuer's
commitment, proves the predicate bound to the request and posts both; the verifier accepts;
the lender's record holds the decision and no score.  A borrower below θ cannot produce an
accepted proof: the wallet cannot prove it, and sends nothing.

The wallet reaches the platform through the test client's transport, as in
``test_oid4vp_wallet_verifier.py``; its guard, resolver, HTTP client and prover are real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from tests.e2e.test_oid4vp_wallet_verifier import _App, _wallet
from tests.integration.verifier_world import VpWorld, crc_query, vp

from credit_commons.core.db import transaction
from credit_commons.core.errors import ValidationError
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.dcql import DcqlUnsatisfiable
from credit_commons.wallet.client import make_presentation
from credit_commons.wallet.oid4vp import Outcome, PresentationPlan, ReadRequest, respond
from credit_commons.wallet.store import Wallet
from credit_commons.wallet.zk_proofs import PredicateUnprovable
from credit_commons.zk import registry

__all__ = ["vp"]

THETA = 650


def _leaves(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _leaves(value)]
    if isinstance(node, list):
        return [leaf for value in node for leaf in _leaves(value)]
    return [node]


def _respond(vp: VpWorld, wallet: Wallet, url: str) -> tuple[Outcome, list[PresentationPlan]]:
    transport = _App(vp.http._transport)
    fetcher = OutboundFetcher(transport=transport, resolver=lambda _host: ["93.184.216.34"])
    shown: list[PresentationPlan] = []

    def confirm(chosen: PresentationPlan, read: ReadRequest) -> bool:
        del read
        shown.append(chosen)
        return True

    try:
        outcome = respond(
            wallet, url, confirm=confirm, fetcher=fetcher, transport=transport, now=vp.now
        )
    finally:
        fetcher.close()
    return outcome, shown


def _ask(vp: VpWorld, **options: str) -> dict[str, object]:
    return vp.request(
        dcql_query=crc_query("zk_commitments"),
        zk_predicates=[
            {
                "id": "score",
                "statement": "score_at_least",
                "credential_query_id": "crc",
                "params": {"threshold": THETA},
            }
        ],
        **options,
    )


@pytest.fixture(autouse=True)
def _statements(vp: VpWorld) -> None:
    with transaction(vp.rt.sessions) as session:
        registry.register_dev_statements(session, vp.rt, actor=vp.rt.operator_actor("zk"))


@pytest.mark.parametrize(
    ("prefix", "mode"),
    [("decentralized_identifier", "direct_post"), ("redirect_uri", "direct_post.jwt")],
)
def test_a_lender_asks_for_score_at_least_650_and_learns_only_that(
    vp: VpWorld, tmp_path: Path, prefix: str, mode: str
) -> None:
    wallet = _wallet(vp, tmp_path / "wallet.json", score=712)
    created = _ask(vp, client_id_prefix=prefix, response_mode=mode)
    outcome, shown = _respond(vp, wallet, str(created["wallet_url"]))
    ((chosen,),) = [shown]
    # The holder was shown the commitment going out, and the predicate asked.
    assert [p.claims for p in chosen.presentations] == [("zk_commitments",)]
    assert chosen.request.zk_predicates is not None
    assert outcome.sent
    assert outcome.redirect_uri is not None
    status = vp.status(str(created["id"]))
    assert (status["decision"], status["reason"]) == ("allow", None)
    code = parse_qs(urlsplit(outcome.redirect_uri).query)["response_code"][0]
    decided = vp.decision(str(created["id"]), code)
    assert decided.status_code == 200, decided.text
    record = decided.json()
    (credential,) = record["credentials"]
    assert set(credential["claims"]) >= {"zk_commitments"}
    assert "score_opening" not in credential["claims"]
    leaves = _leaves(record)
    assert 712 not in leaves
    assert "712" not in leaves


def test_a_borrower_below_the_threshold_cannot_produce_an_accepted_proof(
    vp: VpWorld, tmp_path: Path
) -> None:
    wallet = _wallet(vp, tmp_path / "wallet.json", score=THETA - 1)
    created = _ask(vp)
    with pytest.raises(PredicateUnprovable):
        _respond(vp, wallet, str(created["wallet_url"]))
    # The verifier heard the same access_denied as for a decline; no presentation went.
    status = vp.status(str(created["id"]))
    assert (status["decision"], status["reason"]) == ("deny", "wallet_error")


def test_a_verifier_asking_for_a_commitments_salt_gets_no_answer(
    vp: VpWorld, tmp_path: Path
) -> None:
    # The salt opens the commitment: with it a verifier tries the few hundred scores.
    wallet = _wallet(vp, tmp_path / "wallet.json", score=712)
    created = vp.request(dcql_query=crc_query("zk_openings"))
    with pytest.raises(DcqlUnsatisfiable):
        _respond(vp, wallet, str(created["wallet_url"]))


def test_the_wallet_refuses_to_present_a_salt(vp: VpWorld, tmp_path: Path) -> None:
    wallet = _wallet(vp, tmp_path / "wallet.json", score=712)
    (stored,) = wallet.credentials
    with pytest.raises(ValidationError, match="never disclosed"):
        make_presentation(
            wallet, stored.id, audience="x", nonce="n" * 16, disclose={"/zk_openings/score"}
        )
