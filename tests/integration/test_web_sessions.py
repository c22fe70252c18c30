"""The console's server-side sessions on SQLite and PostgreSQL: only the id's SHA-256 is
stored, idle and absolute expiry, sign out (one, everywhere), pruning, and the cap on one
subject's sessions."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.errors import ValidationError
from credit_commons.jobs import retention_step
from credit_commons.runtime import Runtime
from credit_commons.web.models import WebSessionRow
from credit_commons.web.sessions import (
    ABSOLUTE,
    IDLE,
    MAX_PER_SUBJECT,
    create_session,
    delete_all_sessions,
    delete_session,
    lookup_session,
    prune_sessions,
)


@pytest.fixture
def clock(runtime: Runtime) -> FixedClock:
    fixed = FixedClock(runtime.clock.now())
    runtime.clock = fixed
    return fixed


def _new(rt: Runtime, subject: str = "idt_asha", role: str = "borrower") -> str:
    with transaction(rt.sessions) as session:
        session_id, view = create_session(
            session, rt, role=role, subject=subject, display_name="Asha"
        )
    assert view.role == role
    assert view.subject == subject
    return session_id


def _lookup(rt: Runtime, session_id: str) -> object:
    with transaction(rt.sessions) as session:
        return lookup_session(session, rt, session_id)


def _count(rt: Runtime) -> int:
    with transaction(rt.read_sessions) as session:
        return int(session.scalar(select(func.count()).select_from(WebSessionRow)) or 0)


def test_only_the_ids_digest_is_stored(runtime: Runtime, clock: FixedClock) -> None:
    session_id = _new(runtime)
    assert len(session_id) >= 22  # >= 128 bits, base64url
    with transaction(runtime.read_sessions) as session:
        row = session.scalars(select(WebSessionRow)).one()
        assert row.id_hash == hashlib.sha256(session_id.encode()).hexdigest()
        assert session_id not in (row.id_hash, row.csrf_secret, row.subject)
        assert len(row.csrf_secret) >= 22
    found = _lookup(runtime, session_id)
    assert found is not None
    assert _lookup(runtime, session_id[:-1] + ("A" if session_id[-1] != "A" else "B")) is None
    assert _lookup(runtime, "short") is None


def test_a_session_ends_when_idle(runtime: Runtime, clock: FixedClock) -> None:
    session_id = _new(runtime)
    clock.advance(IDLE - timedelta(seconds=1))
    assert _lookup(runtime, session_id) is not None  # and its last-seen time moved
    clock.advance(IDLE - timedelta(seconds=1))
    assert _lookup(runtime, session_id) is not None
    clock.advance(IDLE)
    assert _lookup(runtime, session_id) is None
    assert _count(runtime) == 0  # an expired session is deleted when met


def test_a_session_ends_at_its_absolute_expiry_however_active(
    runtime: Runtime, clock: FixedClock
) -> None:
    session_id = _new(runtime)
    elapsed = timedelta()
    while elapsed + IDLE / 2 < ABSOLUTE:
        clock.advance(IDLE / 2)
        elapsed += IDLE / 2
        assert _lookup(runtime, session_id) is not None
    clock.advance(ABSOLUTE - elapsed)
    assert _lookup(runtime, session_id) is None


def test_sign_out_and_sign_out_everywhere(runtime: Runtime, clock: FixedClock) -> None:
    phone, laptop = _new(runtime), _new(runtime)
    other = _new(runtime, subject="idt_ravi")
    with transaction(runtime.sessions) as session:
        delete_session(session, phone)
    assert _lookup(runtime, phone) is None
    assert _lookup(runtime, laptop) is not None
    phone = _new(runtime)
    with transaction(runtime.sessions) as session:
        assert delete_all_sessions(session, "idt_asha") == 2
    assert _lookup(runtime, phone) is None
    assert _lookup(runtime, laptop) is None
    assert _lookup(runtime, other) is not None


def test_pruning_removes_only_dead_sessions(runtime: Runtime, clock: FixedClock) -> None:
    _new(runtime)
    clock.advance(IDLE + timedelta(seconds=1))
    alive = _new(runtime, subject="idt_ravi")
    with transaction(runtime.sessions) as session:
        assert prune_sessions(session, runtime.clock.now()) == 1
    assert _lookup(runtime, alive) is not None


def test_a_subject_keeps_a_bounded_number_of_sessions(runtime: Runtime, clock: FixedClock) -> None:
    first = _new(runtime)
    for _ in range(MAX_PER_SUBJECT + 4):
        clock.advance(timedelta(seconds=1))
        last = _new(runtime)
    assert _count(runtime) == MAX_PER_SUBJECT
    assert _lookup(runtime, first) is None
    assert _lookup(runtime, last) is not None


@pytest.mark.parametrize(
    ("role", "subject", "name"),
    [
        ("admin", "idt_a", "A"),
        ("borrower", "", "A"),
        ("borrower", "idt_a", ""),
        ("lender", "x" * 201, "A"),
    ],
)
def test_a_malformed_session_is_refused(
    runtime: Runtime, role: str, subject: str, name: str
) -> None:
    with transaction(runtime.sessions) as session, pytest.raises(ValidationError):
        create_session(session, runtime, role=role, subject=subject, display_name=name)


def test_the_platforms_retention_step_prunes_sessions(runtime: Runtime, clock: FixedClock) -> None:
    _new(runtime)
    clock.advance(ABSOLUTE)
    report = retention_step()(runtime, 0)
    assert report["retention_web_sessions"] == 1
    assert _count(runtime) == 0
