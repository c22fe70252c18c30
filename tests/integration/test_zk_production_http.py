"""A ``dev`` statement is refused in production over HTTP, on SQLite and PostgreSQL, with
the problem+json code ``zk.setup_not_allowed`` (issue 18 §1, seed 002 §6): registering one
(``POST /v1/admin/zk/statements``, which the same app in development accepts) and asking for
a proof of one (``POST /v1/verifier/requests``); and a proof of a ``dev`` statement a wallet
sends to a production verifier is denied at step 8 (``zk_setup_not_allowed``).

Production is the app's own setting (``COMMONS_ENV=production``, ``Settings.is_production``):
the same runtime's settings with ``env`` production, as ``tests/integration/test_zk_registry.py``
does for the service functions; its other refusals (SQLite, the master key) are tested where
they are made.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.e2e.test_oid4vp_wallet_verifier import _App
from tests.e2e.test_zk_oid4vp_http import THETA, _wallet
from tests.integration.verifier_world import BASE, VpWorld, crc_query, vp

from credit_commons.core.db import transaction
from credit_commons.core.net import OutboundFetcher
from credit_commons.core.settings import Environment
from credit_commons.gateway.app import create_app
from credit_commons.wallet.oid4vp import PresentationPlan, ReadRequest, VerifierRefused, respond
from credit_commons.zk import registry
from credit_commons.zk.registry_dev import dev_statements

__all__ = ["vp"]

PROBLEM = "application/problem+json"


@pytest.fixture
def production(vp: VpWorld) -> TestClient:
    """The app of the same database and keys with ``env`` production; the engine's ``dev``
    statements registered while it was in development."""
    with transaction(vp.rt.sessions) as session:
        registry.register_dev_statements(session, vp.rt, actor=vp.rt.operator_actor("zk"))
    settings = vp.rt.settings.model_copy(update={"env": Environment.PRODUCTION})
    assert settings.is_production
    runtime = replace(vp.rt, settings=settings)
    # Not entered: its start-up checks are production's (PostgreSQL durability and the
    # rest), tested where they are made; the routes are what this file tests.
    return TestClient(create_app(settings, runtime=runtime), base_url=BASE)


def _next_dev_document(vp: VpWorld) -> dict[str, Any]:
    # score_at_least's dev document, as the next version (what the CLI's --dev would send).
    with transaction(vp.rt.sessions) as session:
        current = registry.get_statement(session, vp.rt, "score_at_least")[0].version
    (document,) = [d for d in dev_statements(registry.ARTEFACTS) if d["id"] == "score_at_least"]
    return {**document, "version": current + 1}


def _refused(answer: Any) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert answer.json()["code"] == "zk.setup_not_allowed"


def test_registering_a_dev_statement_over_http_is_refused_in_production(
    vp: VpWorld, production: TestClient
) -> None:
    document = _next_dev_document(vp)
    _refused(production.post("/v1/admin/zk/statements", json=document, headers=vp.admin))
    listed = {s["id"]: s["version"] for s in production.get("/v1/zk/statements").json()}
    assert listed["score_at_least"] == document["version"] - 1  # nothing registered
    # The same request in development registers it: the refusal is production's.
    made = vp.http.post("/v1/admin/zk/statements", json=document, headers=vp.admin)
    assert made.status_code == 201, made.text
    assert (made.json()["version"], made.json()["setup_provenance"]) == (
        document["version"],
        "dev",
    )
    # Only administrators register; anyone else is told nothing.
    assert vp.http.post("/v1/admin/zk/statements", json=document).status_code == 401
    person = vp.http.post("/v1/identities", json={"roles": ["business"], "profile": {"name": "M"}})
    as_person = {"Authorization": f"Bearer {person.json()['access_token']}"}
    refused = vp.http.post("/v1/admin/zk/statements", json=document, headers=as_person)
    assert refused.status_code == 404, refused.text


def test_asking_for_a_dev_statement_is_refused_in_production(
    vp: VpWorld, production: TestClient
) -> None:
    body = {
        "dcql_query": crc_query("zk_commitments"),
        "zk_predicates": [
            {
                "id": "score",
                "statement": "score_at_least",
                "credential_query_id": "crc",
                "params": {"threshold": THETA},
            }
        ],
    }
    _refused(production.post("/v1/verifier/requests", json=body, headers=vp.token()))
    # In development the same request is made.
    assert vp.http.post("/v1/verifier/requests", json=body, headers=vp.token()).status_code == 201


def test_a_proof_of_a_dev_statement_is_denied_by_a_production_verifier(
    vp: VpWorld, production: TestClient, tmp_path: Path
) -> None:
    # A request made before the switch to production; the wallet proves (it reads the
    # statement from the public registry) and answers the production verifier.
    wallet = _wallet(vp, tmp_path / "wallet.json", score=712)
    created = vp.request(
        dcql_query=crc_query("zk_commitments"),
        zk_predicates=[
            {
                "id": "score",
                "statement": "score_at_least",
                "credential_query_id": "crc",
                "params": {"threshold": THETA},
            }
        ],
    )
    transport = _App(production._transport)
    fetcher = OutboundFetcher(transport=transport, resolver=lambda _host: ["93.184.216.34"])

    def confirm(chosen: PresentationPlan, read: ReadRequest) -> bool:
        del chosen, read
        return True

    try:
        with pytest.raises(VerifierRefused):  # the wallet hears the non-oracular refusal
            respond(
                wallet,
                str(created["wallet_url"]),
                confirm=confirm,
                fetcher=fetcher,
                transport=transport,
                now=vp.now,
            )
    finally:
        fetcher.close()
    status = vp.status(str(created["id"]))
    assert (status["decision"], status["reason"]) == ("deny", "zk_setup_not_allowed")
