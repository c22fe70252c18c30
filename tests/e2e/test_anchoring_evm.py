"""End to end: checkpoints anchored to an EVM chain (in-process eth-tester) and reconciled.

The worker publishes each new checkpoint root through the Vyper ``Anchor`` contract; the
reconciler reads it back; independently of our code, the chain's own ``Anchored`` event log
must hold exactly the roots of the checkpoints the log serves over HTTP.
"""

from __future__ import annotations

from datetime import timedelta

from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from web3 import EthereumTesterProvider, Web3

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.events import EventRow
from credit_commons.gateway.app import create_app
from credit_commons.keys import service as key_service
from credit_commons.keys.algorithms import KeyType
from credit_commons.ledger import anchoring
from credit_commons.ledger.anchors.evm import (
    EvmAnchorBackend,
    compile_anchor_contract,
    deploy_anchor_contract,
)
from credit_commons.ledger.checkpoint import verify_checkpoint
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.note import Ed25519Verifier
from credit_commons.ledger.steps import anchor_step
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime


def test_checkpoints_are_anchored_on_chain_and_reconciled(
    runtime: Runtime, settings: Settings
) -> None:
    w3 = Web3(EthereumTesterProvider())
    owner = Account.create()
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": owner.address, "value": 10**18})
    address = deploy_anchor_contract(w3, owner)
    backend = EvmAnchorBackend(w3, address, owner)
    clock = FixedClock(runtime.clock.now())
    runtime.clock = clock
    worker = LogWorker(runtime, steps=[anchor_step({"evm": backend})])

    served: list[tuple[int, bytes]] = []
    with TestClient(create_app(settings, runtime=runtime)) as client:
        for round_ in range(3):
            with transaction(runtime.sessions) as session:
                key_service.create_key(
                    session,
                    runtime.key_store,
                    clock,
                    name=f"issuer-{round_}",
                    key_type=KeyType.ED25519,
                    actor=runtime.operator_actor(),
                    objects=runtime.objects,
                )
            report = worker.run_once(force_checkpoint=True)
            assert report.extra["anchors_published"] == 1
            key = client.get("/v1/log/key").json()
            checkpoint = verify_checkpoint(
                client.get("/v1/log/checkpoint").text, Ed25519Verifier.from_vkey(key["vkey"])
            )
            served.append((checkpoint.size, bytes(checkpoint.root_hash)))
            clock.advance(timedelta(seconds=runtime.settings.anchor_interval + 1))
        worker.run_once()  # reconciles the last one

    jobs = anchoring.anchor_status(runtime)
    assert {j.status for j in jobs} == {"VERIFIED"}
    assert sorted((j.size, bytes.fromhex(j.root)) for j in jobs) == served

    # Independently of our backend code: the chain's event log.
    contract = w3.eth.contract(address=address, abi=compile_anchor_contract().abi)
    logs = contract.events.Anchored.get_logs(from_block=0)
    on_chain = [(log["args"]["size"], bytes(log["args"]["root"])) for log in logs]
    assert on_chain == served
    assert {log["args"]["origin"] for log in logs} == {log_identity(runtime).origin}

    # The anchoring itself is an event in the log.
    with transaction(runtime.read_sessions) as session:
        anchored = session.scalar(
            select(func.count()).select_from(EventRow).where(EventRow.type == "checkpoint.anchored")
        )
    assert anchored == 3
