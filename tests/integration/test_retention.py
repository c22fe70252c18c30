"""Retention on both databases: only rows past their window go, and the run is an event."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.events import EventRow
from credit_commons.identity import delegations, service
from credit_commons.identity.models import AccessTokenRow, DelegationRow
from credit_commons.identity.schemas import DelegationCreate, IdentityCreate
from credit_commons.privacy import dsr
from credit_commons.privacy.models import DsrRequestRow
from credit_commons.privacy.retention import run_retention
from credit_commons.runtime import Runtime


def count(runtime: Runtime, table: type) -> int:
    with transaction(runtime.read_sessions) as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def test_retention_deletes_only_what_is_past_its_window(runtime: Runtime) -> None:
    clock = FixedClock(runtime.clock.now())
    runtime.clock = clock
    with transaction(runtime.sessions) as session:
        a = service.create_identity(
            session, runtime, IdentityCreate.model_validate({"profile": {"name": "A"}})
        )
        b = service.create_identity(
            session, runtime, IdentityCreate.model_validate({"profile": {"name": "B"}})
        )
        owner = service.Principal(a.identity_token, "identity")
        offered = delegations.create_delegation(
            session,
            runtime,
            owner,
            a.identity_token,
            DelegationCreate.model_validate(
                {
                    "delegatee_token": b.identity_token,
                    "type": "parent_child",
                    "permissions": ["read:profile"],
                    "expires_in_days": 10,
                }
            ),
        )
        dsr.open_request(session, runtime, a.identity_token, dsr.DsrKind.EXPORT)
    with transaction(runtime.sessions) as session:
        assert run_retention(session, runtime) == {
            "access_tokens": 0,
            "dsr_requests": 0,
            "delegations": 0,
            "access_denial_counts": 0,
        }

    clock.advance(timedelta(days=40))  # tokens (30 d + 1) and the request (15 min + 30 d) expire
    with transaction(runtime.sessions) as session:
        counts = run_retention(session, runtime)
    assert counts == {
        "access_tokens": 2,
        "dsr_requests": 1,
        "delegations": 0,
        "access_denial_counts": 0,
    }
    assert count(runtime, AccessTokenRow) == 0
    assert count(runtime, DsrRequestRow) == 0
    assert count(runtime, DelegationRow) == 1

    clock.advance(timedelta(days=366))
    with transaction(runtime.sessions) as session:
        assert run_retention(session, runtime)["delegations"] == 1
        assert session.get(DelegationRow, offered.id) is None
        runs = session.scalar(
            sa.select(sa.func.count()).select_from(EventRow).where(EventRow.type == "retention.run")
        )
    assert runs == 3
