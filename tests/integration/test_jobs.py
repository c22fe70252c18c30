"""The platform's periodic work (credit_commons.jobs) runs in the worker the edges start,
and the log's worker alone runs only the log's own steps (the log never imports the
domains above it)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from credit_commons.consent import requests as consent_requests
from credit_commons.consent.model import ConsentRequest
from credit_commons.consent.models import ConsentRow
from credit_commons.core.db import transaction
from credit_commons.identity import service as identity_service
from credit_commons.identity.schemas import IdentityCreate
from credit_commons.issuer.catalogue import CREDIT_READINESS
from credit_commons.jobs import default_steps
from credit_commons.ledger.restore_mode import confirm_restore, enter_restore_mode
from credit_commons.ledger.steps import Step
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime


@dataclass(frozen=True)
class _Lender:
    client_id: str = "lnd_" + "c" * 22
    purposes: frozenset[str] = frozenset({"105"})


def _pending_consent(rt: Runtime, seconds: float) -> str:
    """A consent request that expires ``seconds`` from now, left pending."""
    with transaction(rt.sessions) as session:
        body = IdentityCreate.model_validate({"roles": ["business"], "profile": {"name": "J"}})
        borrower = identity_service.create_identity(session, rt, body).identity_token
        request = ConsentRequest.model_validate(
            {
                "template": "loan_underwriting",
                "borrower": borrower,
                "purpose": "105",
                "consent_expiry": (rt.clock.now() + timedelta(seconds=seconds)).isoformat(),
                "scopes": [{"type": CREDIT_READINESS.name, "claims": ["/income_bracket"]}],
            }
        )
        return consent_requests.request_consent(session, rt, _Lender(), request).consent_id


def _status(rt: Runtime, consent_id: str) -> str:
    with transaction(rt.read_sessions) as session:
        row = session.get(ConsentRow, consent_id)
        assert row is not None
        return str(row.status)


def test_the_edges_worker_expires_consents_and_the_logs_worker_alone_does_not(
    runtime: Runtime,
) -> None:
    consent_id = _pending_consent(runtime, 1.0)
    time.sleep(1.1)  # past its expiry (the consent's own clock is the runtime's)
    log_only = LogWorker(runtime).run_once(force_checkpoint=True)
    assert "consents_expired" not in log_only.extra
    assert _status(runtime, consent_id) == "PENDING"
    composed = LogWorker(runtime, steps=default_steps(runtime)).run_once(force_checkpoint=True)
    assert composed.extra.get("consents_expired") == 1
    assert _status(runtime, consent_id) == "EXPIRED"


def test_a_worker_held_in_backup_restore_mode_runs_no_step_and_no_probe(
    runtime: Runtime,
) -> None:
    """While held (after `commons restore`, before `--confirm`) no step writes or sends:
    consents are not expired, no probe asks a witness; after the confirmation they run."""
    consent_id = _pending_consent(runtime, 1.0)
    with transaction(runtime.sessions) as session:
        enter_restore_mode(
            session,
            backup_id="bk_test",
            manifest_sha256="0" * 64,
            log_size=0,
            log_root="",
            now=runtime.clock.now(),
        )
    time.sleep(1.1)  # past its expiry (the consent's own clock is the runtime's)
    calls: list[str] = []

    def spy(name: str) -> Step:
        def step(_rt: Runtime, _size: int) -> dict[str, object]:
            calls.append(name)
            return {}

        return step

    worker = LogWorker(runtime, steps=[*default_steps(runtime), spy("step")], probes=[spy("probe")])
    held = worker.run_once(force_checkpoint=True)
    assert held.held is not None
    assert held.held.backup_id == "bk_test"
    assert calls == []
    assert held.extra == {}
    assert _status(runtime, consent_id) == "PENDING"
    with transaction(runtime.sessions) as session:
        confirm_restore(session, actor=runtime.operator_actor(), now=runtime.clock.now())
    released = worker.run_once(force_checkpoint=True)
    assert released.held is None
    assert calls == ["probe", "step"]
    assert released.extra.get("consents_expired") == 1
    assert _status(runtime, consent_id) == "EXPIRED"
