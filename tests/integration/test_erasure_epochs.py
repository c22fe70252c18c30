"""Erasure epochs on SQLite and PostgreSQL: a close killed anywhere is finished by the next
run and loses nothing; the worker closes a due epoch in slices; an erasure made while an
epoch is closing belongs to the next one; a key wrapped by a process that has not seen the
rotation yet is rewrapped before the old version is destroyed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import migrate

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.events import EventRow
from credit_commons.identity.auth import Principal
from credit_commons.identity.schemas import IdentityCreate
from credit_commons.identity.service import create_identity
from credit_commons.keys.master import MasterKeyring
from credit_commons.privacy import epochs
from credit_commons.privacy.erasure import erase_subject
from credit_commons.privacy.models import ErasureEpochRow
from credit_commons.privacy.schemas import ErasureReceipt
from credit_commons.runtime import Runtime
from credit_commons.vault.kms import LocalKms
from credit_commons.vault.models import SubjectKeyRow
from credit_commons.vault.service import Vault

ADMIN = Principal("admin:test", "admin")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC))


@pytest.fixture
def rt(settings: Settings, clock: FixedClock) -> Iterator[Runtime]:
    runtime = Runtime.build(settings.model_copy(update={"erasure_epoch": 3600.0}), clock=clock)
    migrate(runtime.engine)
    try:
        yield runtime
    finally:
        runtime.close()


def seal_many(rt: Runtime, count: int, prefix: str = "idt_epochsubject") -> dict[str, bytes]:
    """One sealed value for each of ``count`` subjects, sealed in one transaction."""
    subjects = [f"{prefix}{i:06d}" for i in range(count)]
    with transaction(rt.sessions) as session:
        sealed = rt.vault.seal_many(
            session, [(s.encode(), s, "r") for s in subjects], purpose="profile"
        )
    return dict(zip(subjects, sealed, strict=True))


def all_open(rt: Runtime, sealed: dict[str, bytes]) -> bool:
    """Whether every value opens in a process that has nothing cached (a fresh vault)."""
    fresh = Vault(LocalKms(MasterKeyring.load(rt.settings.resolved_master_key_file)), rt.clock)
    with transaction(rt.read_sessions) as session:
        for subject, value in sealed.items():
            if fresh.open(session, value, subject=subject, purpose="profile", record="r") != (
                subject.encode()
            ):
                return False
    return True


def register(rt: Runtime, name: str = "Lakshmi") -> str:
    with transaction(rt.sessions) as session:
        made = create_identity(
            session, rt, IdentityCreate.model_validate({"profile": {"name": name}}), None
        )
    return str(made.identity_token)


def erase(rt: Runtime, token: str) -> ErasureReceipt:
    with transaction(rt.sessions) as session:
        return erase_subject(session, rt, ADMIN, token)


def key_versions(rt: Runtime) -> set[int]:
    with transaction(rt.read_sessions) as session:
        return set(session.scalars(sa.select(SubjectKeyRow.kek_version).distinct()))


# -- a close interrupted anywhere ----------------------------------------------------------


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("stage", ["rotate", "rewrap", "destroy", "record"])
def test_a_close_interrupted_at_any_step_is_finished_by_the_next_run(
    rt: Runtime, stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed = seal_many(rt, 25)
    erased = register(rt)
    erase(rt, erased)
    kms = rt.vault.kms
    if stage == "rotate":
        monkeypatch.setattr(kms, "rotate", lambda: (_ for _ in ()).throw(Boom()))
    elif stage == "rewrap":
        real_wrap, calls = kms.wrap, [0]

        def flaky(key: bytes, *, aad: bytes) -> Any:
            calls[0] += 1
            if calls[0] == 12:
                raise Boom()
            return real_wrap(key, aad=aad)

        monkeypatch.setattr(kms, "wrap", flaky)
    elif stage == "destroy":
        monkeypatch.setattr(kms, "destroy_versions_below", lambda v: (_ for _ in ()).throw(Boom()))
    else:  # the KMS destroyed, the transaction that records it fails

        def fail(session: Any, version: int) -> None:
            raise Boom()

        monkeypatch.setattr(epochs, "note_destroyed_below", fail)

    with pytest.raises(Boom):
        epochs.close_epoch(rt, batch=10)
    monkeypatch.undo()
    with transaction(rt.read_sessions) as session:
        assert [e.state for e in epochs.list_epochs(session, rt)] == ["open", "closing"]
    assert all_open(rt, sealed)  # nothing lost in between

    report = epochs.close_epoch(rt, batch=10)
    assert (report.epoch, report.state, report.kek_version) == (1, "closed", 2)
    assert report.destroyed_versions == [1]
    assert report.erasures == 1
    assert rt.vault.kms.versions() == [2]
    assert key_versions(rt) == {2}
    assert all_open(rt, sealed)
    with transaction(rt.read_sessions) as session:
        closed = session.scalars(sa.select(EventRow).where(EventRow.type == "privacy.epoch_closed"))
        (event,) = closed.all()
    details = json.loads(event.details)
    assert details["epoch"] == 1
    assert details["subject_keys_rewrapped"] >= 25
    # The next close starts from the next epoch and version.
    assert epochs.close_epoch(rt).kek_version == 3


def test_a_killed_close_loses_nothing_and_the_next_run_completes_it(
    runtime: Runtime, settings: Settings
) -> None:
    sealed = seal_many(runtime, 1500)
    command = [sys.executable, "-m", "credit_commons.cli", "privacy", "close-epoch"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    env.update(
        COMMONS_DATA_DIR=str(settings.data_dir),
        COMMONS_DATABASE_URL=settings.resolved_database_url,
        COMMONS_LOG_LEVEL="ERROR",
    )
    process = subprocess.Popen(
        [*command, "--batch", "1", "--json"], env=env, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with runtime.engine.connect() as connection:
                moved = connection.scalar(
                    sa.select(sa.func.count())
                    .select_from(SubjectKeyRow)
                    .where(SubjectKeyRow.kek_version == 2)
                )
            if moved and moved >= 50:
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    with transaction(runtime.read_sessions) as session:
        states = [e.state for e in epochs.list_epochs(session, runtime)]
    assert states == ["open", "closing"], "the close finished before it could be killed"
    assert key_versions(runtime) == {1, 2}  # killed in the middle of the rewrap
    assert all_open(runtime, sealed)

    done = subprocess.run([*command, "--json"], env=env, capture_output=True, check=True)
    report = json.loads(done.stdout)
    assert (report["state"], report["kek_version"], report["destroyed_versions"]) == (
        "closed",
        2,
        [1],
    )
    assert key_versions(runtime) == {2}
    assert all_open(runtime, sealed)


# -- the worker, and erasures during a close -----------------------------------------------


def test_the_worker_closes_a_due_epoch_in_slices_and_renews_an_empty_one(
    rt: Runtime, clock: FixedClock
) -> None:
    sealed = seal_many(rt, 300)
    step = epochs.epoch_step(interval=0.0, budget=0.0, batch=50)  # one batch per pass
    assert step(rt, 0) == {}  # not due
    clock.advance(timedelta(hours=2))
    assert step(rt, 0) == {}  # due, but nothing was erased: renewed, not rotated
    assert rt.vault.kms.versions() == [1]
    with transaction(rt.read_sessions) as session:
        (current,) = epochs.list_epochs(session, rt)
    assert current.opened_at == clock.now().isoformat()

    erase(rt, register(rt))
    assert step(rt, 0) == {}  # renewed an hour ago... not due yet
    clock.advance(timedelta(minutes=61))
    states = []
    for _ in range(50):
        states.append(step(rt, 0).get("erasure_epoch_state"))
        if states[-1] == "closed":
            break
    assert states[0] == "closing"
    assert states[-1] == "closed"
    assert rt.vault.kms.versions() == [2]
    assert all_open(rt, sealed)


def test_an_erasure_during_a_close_belongs_to_the_next_epoch(rt: Runtime) -> None:
    seal_many(rt, 30)
    first = erase(rt, register(rt, "First"))
    assert first.epoch == 1
    partial = epochs.close_epoch(rt, batch=5, deadline=0.0)  # stops after one batch
    assert partial.state == "closing"
    second = erase(rt, register(rt, "Second"))
    assert second.epoch == 2
    due = datetime.fromisoformat(second.unreadable_in_backups_after)
    assert due == datetime.fromisoformat(second.epoch_opened_at) + timedelta(hours=1)
    report = epochs.close_epoch(rt)
    assert (report.epoch, report.state, report.erasures) == (1, "closed", 1)
    with transaction(rt.read_sessions) as session:
        newest = session.scalars(
            sa.select(ErasureEpochRow).order_by(ErasureEpochRow.number.desc())
        ).first()
    assert newest is not None
    assert (newest.number, newest.erasures, newest.closing_at) == (2, 1, None)


def test_a_key_wrapped_by_a_process_that_missed_the_rotation_is_rewrapped(
    rt: Runtime, settings: Settings
) -> None:
    # Another process, whose KMS still holds only version 1, makes a subject key while a
    # close runs.  It either commits before the close records the new version (and the
    # rewrap moves its key), or it reads the new version first and wraps under it: never
    # does its key stay under a version the close destroys.
    seal_many(rt, 10)
    other = Vault(LocalKms(MasterKeyring.load(settings.resolved_master_key_file)), rt.clock)
    inside, release = threading.Event(), threading.Event()
    sealed: list[bytes] = []

    def slow_unit_of_work() -> None:
        with transaction(rt.sessions) as session:
            sealed.append(
                other.seal(session, b"late", subject="idt_latecomer00", purpose="p", record="r")
            )
            inside.set()
            release.wait(10)

    writer = threading.Thread(target=slow_unit_of_work)
    writer.start()
    assert inside.wait(10)
    closer_done: list[epochs.EpochReport] = []
    closer = threading.Thread(target=lambda: closer_done.append(epochs.close_epoch(rt)))
    closer.start()
    time.sleep(0.5)
    assert not closer_done  # it waits for the unit of work that is wrapping
    release.set()
    writer.join(10)
    closer.join(30)
    assert closer_done
    assert closer_done[0].state == "closed"
    assert key_versions(rt) == {2}
    assert all_open(rt, {})
    fresh = Vault(LocalKms(MasterKeyring.load(settings.resolved_master_key_file)), rt.clock)
    with transaction(rt.read_sessions) as session:
        assert (
            fresh.open(session, sealed[0], subject="idt_latecomer00", purpose="p", record="r")
            == b"late"
        )
    with transaction(rt.sessions) as session:
        # And the stale process now seals under version 2 (it reloaded its KMS).
        other.seal(session, b"later", subject="idt_latecomer01", purpose="p", record="r")
    assert key_versions(rt) == {2}


def test_the_epochs_and_the_receipt_are_listed(rt: Runtime) -> None:
    receipt = erase(rt, register(rt))
    assert receipt.erased is True
    assert receipt.epoch == 1
    with transaction(rt.read_sessions) as session:
        (row,) = epochs.list_epochs(session, rt)
    assert row.state == "open"
    assert row.erasures == 1
    assert row.due_at == receipt.unreadable_in_backups_after
