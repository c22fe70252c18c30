"""The log worker's steps on both databases: witnesses cosign, anchors publish/retry/reconcile."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError
from credit_commons.events import EventRow, record_event
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.service import KeyRotated
from credit_commons.ledger import anchoring
from credit_commons.ledger import service as log_service
from credit_commons.ledger.anchors import (
    AnchorPublishFailed,
    AnchorReceipt,
    AnchorRecord,
    FileAnchorBackend,
)
from credit_commons.ledger.cosignature import CosignatureSigner, verify_cosigned
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.note import Ed25519Verifier
from credit_commons.ledger.steps import anchor_step, parse_witnesses, witness_step
from credit_commons.ledger.witness import SqlWitnessStore, Witness, WitnessConfig
from credit_commons.ledger.witness_client import WitnessEndpoint
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime


def grow(runtime: Runtime, count: int) -> None:
    with transaction(runtime.sessions) as session:
        for i in range(count):
            record_event(
                session,
                KeyRotated(key_name="k", version=i, key_type=KeyType.ED25519, kid=f"k{i}"),
                actor=runtime.operator_actor(),
                at=runtime.clock.now(),
            )


def log_vkey(runtime: Runtime) -> str:
    return log_identity(runtime).vkey


def in_process_witness(
    name: str, log_key: str, tmp: Path
) -> tuple[WitnessEndpoint, httpx.MockTransport]:
    signer = CosignatureSigner.from_private_key(name, Ed25519PrivateKey.generate())
    origin = log_key.split("+", 1)[0]
    witness = Witness(
        WitnessConfig(signer, {origin: [log_key]}),
        SqlWitnessStore.open(f"sqlite:///{tmp / (name.replace('/', '_') + '.db')}"),
    )

    def handle(request: httpx.Request) -> httpx.Response:
        try:
            lines = witness.add_checkpoint(request.content, now=1_700_000_000)
        except CommonsError as e:
            return httpx.Response(e.status, text=e.detail)
        return httpx.Response(200, text="".join(lines))

    return WitnessEndpoint(url=f"https://{name}", vkey=signer.verifier().vkey), httpx.MockTransport(
        handle
    )


def test_witness_step_collects_cosignatures_served_with_the_checkpoint(
    runtime: Runtime, tmp_path: Path
) -> None:
    grow(runtime, 10)
    LogWorker(runtime, steps=[]).run_once(force_checkpoint=True)
    vkey = log_vkey(runtime)
    endpoint, transport = in_process_witness("witness.example/w1", vkey, tmp_path)
    worker = LogWorker(runtime, steps=[witness_step([endpoint], transport)])
    report = worker.run_once(force_checkpoint=True)
    assert report.extra == {"cosigned": 1, "witness_failures": 0}
    grow(runtime, 5)
    report = worker.run_once(force_checkpoint=True)  # second round: old size 10 + proof
    assert report.extra["cosigned"] == 1
    with transaction(runtime.read_sessions) as session:
        row = log_service.latest_checkpoint(session)
        assert row is not None
        text = log_service.checkpoint_with_cosignatures(session, row)
    cosigned = verify_cosigned(text, Ed25519Verifier.from_vkey(vkey), [endpoint.verifier], 1)
    assert cosigned.checkpoint.size == 15


def test_witness_settings_are_parsed_strictly() -> None:
    signer = CosignatureSigner.from_private_key("w.example/x", Ed25519PrivateKey.generate())
    vkey = signer.verifier().vkey
    [endpoint] = parse_witnesses([f"{vkey}@https://w.example/x"])
    assert endpoint.url == "https://w.example/x"
    for bad in ("no-at-sign", f"{vkey}@ftp://w.example", "garbage@https://w.example"):
        with pytest.raises(CommonsError):
            parse_witnesses([bad])


def test_file_anchors_publish_and_reconcile(runtime: Runtime, tmp_path: Path) -> None:
    backends = {"file": FileAnchorBackend(tmp_path / "anchors.jsonl")}
    worker = LogWorker(runtime, steps=[anchor_step(backends)])
    grow(runtime, 3)
    report = worker.run_once(force_checkpoint=True)
    assert report.extra["anchors_enqueued"] == 1
    assert report.extra["anchors_published"] == 1
    assert report.extra["anchors_verified"] == 1
    jobs = anchoring.anchor_status(runtime)
    assert [(j.backend, j.size, j.status) for j in jobs] == [("file", 3, "VERIFIED")]
    with transaction(runtime.read_sessions) as session:
        types = session.scalars(select(EventRow.type)).all()
    assert "checkpoint.anchored" in types
    # The anchored event itself is logged; a tampered journal is caught on reconciliation.
    grow(runtime, 2)
    LogWorker(runtime, steps=[]).run_once(force_checkpoint=True)
    assert anchoring.enqueue_anchors(runtime, backends) == 0  # within the anchor interval
    assert anchoring.enqueue_anchors(runtime, backends, force=True) == 1
    assert anchoring.publish_due(runtime, backends)["published"] == 1
    journal = tmp_path / "anchors.jsonl"
    journal.write_text(journal.read_text().replace('"seq":1', '"seq":7'))
    assert anchoring.reconcile(runtime, backends)["mismatch"] == 1


class FlakyBackend:
    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.published: list[AnchorRecord] = []

    def publish(self, record: AnchorRecord, /) -> AnchorReceipt:
        if self.failures:
            self.failures -= 1
            raise AnchorPublishFailed("node unreachable")
        self.published.append(record)
        return AnchorReceipt("flaky", str(len(self.published) - 1))

    def read_back(self, receipt: AnchorReceipt, /) -> AnchorRecord:
        return self.published[int(receipt.locator)]


def test_retries_back_off_then_succeed_or_go_dead(runtime: Runtime) -> None:
    clock = FixedClock(runtime.clock.now())
    runtime.clock = clock
    grow(runtime, 1)
    LogWorker(runtime, steps=[]).run_once(force_checkpoint=True)
    flaky = FlakyBackend(failures=2)
    backends = {"flaky": flaky}
    anchoring.enqueue_anchors(runtime, backends)
    no_jitter = lambda: 1.0  # noqa: E731
    assert anchoring.publish_due(runtime, backends, jitter=no_jitter) == {
        "published": 0,
        "retry": 1,
        "dead": 0,
    }
    assert anchoring.publish_due(runtime, backends, jitter=no_jitter)["retry"] == 0  # not due yet
    clock.advance(timedelta(seconds=3))
    assert anchoring.publish_due(runtime, backends, jitter=no_jitter)["retry"] == 1
    clock.advance(timedelta(seconds=5))
    assert anchoring.publish_due(runtime, backends, jitter=no_jitter)["published"] == 1
    assert anchoring.reconcile(runtime, backends)["verified"] == 1
    [job] = anchoring.anchor_status(runtime)
    assert (job.status, job.attempts, job.last_error) == ("VERIFIED", 3, None)

    grow(runtime, 1)
    LogWorker(runtime, steps=[]).run_once(force_checkpoint=True)
    hopeless = {"flaky": FlakyBackend(failures=100)}
    assert anchoring.enqueue_anchors(runtime, hopeless, force=True) == 1
    outcomes = []
    for _ in range(runtime.settings.anchor_max_attempts):
        clock.advance(timedelta(hours=2))
        outcomes.append(anchoring.publish_due(runtime, hopeless, jitter=no_jitter))
    assert outcomes[-1]["dead"] == 1
    assert anchoring.anchor_status(runtime)[0].status == "DEAD"
