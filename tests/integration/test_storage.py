"""Storage on SQLite and PostgreSQL: migrations, the key store and the event spine."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import make_engine, transaction
from credit_commons.core.encoding import b64url_encode
from credit_commons.core.errors import ValidationError
from credit_commons.core.migrate import current_revision, head_revision, upgrade
from credit_commons.events import EventRow, RecordedEvent, record_event
from credit_commons.keys import service as key_service
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.errors import KeyDecryptionFailed, KeyExists, KeyNotFound
from credit_commons.keys.master import MasterKeyring
from credit_commons.keys.service import KeyRotated
from credit_commons.keys.store import EmbeddedKeyStore
from credit_commons.runtime import Runtime


def _create_key(session: Session, runtime: Runtime, name: str, key_type: KeyType) -> None:
    key_service.create_key(
        session,
        runtime.key_store,
        runtime.clock,
        name=name,
        key_type=key_type,
        actor=runtime.operator_actor(),
        objects=runtime.objects,
    )


def test_migrations_reach_head_and_are_idempotent(runtime: Runtime) -> None:
    assert current_revision(runtime.engine) == head_revision()
    assert upgrade(runtime.engine) == head_revision()
    tables = set(sa.inspect(runtime.engine).get_table_names())
    assert {"events", "signing_keys", "alembic_version"} <= tables


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


@pytest.mark.parametrize("key_type", list(KeyType))
def test_key_lifecycle_create_sign_rotate_verify(runtime: Runtime, key_type: KeyType) -> None:
    actor = runtime.operator_actor()
    with transaction(runtime.sessions) as session:
        v1 = key_service.create_key(
            session,
            runtime.key_store,
            runtime.clock,
            name="issuer",
            key_type=key_type,
            actor=actor,
            objects=runtime.objects,
        )
        old_signature = runtime.key_store.signer(session, "issuer").sign(b"before")
    with transaction(runtime.sessions) as session:
        v2 = key_service.rotate_key(
            session,
            runtime.key_store,
            runtime.clock,
            name="issuer",
            actor=actor,
            objects=runtime.objects,
        )
        signer = runtime.key_store.signer(session, "issuer")
        versions = runtime.key_store.versions(session, "issuer")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.kid != v2.kid
    # Only the newest signs; every version keeps verifying.
    assert signer.kid == v2.kid
    assert signer.alg == key_type.jose_alg
    new_signature = signer.sign(b"after")
    by_version = {v.version: v for v in versions}
    by_version[1].public_key.verify(key_type.jose_alg, b"before", old_signature)
    by_version[2].public_key.verify(key_type.jose_alg, b"after", new_signature)
    with transaction(runtime.sessions) as session:
        events = session.scalars(sa.select(EventRow).order_by(EventRow.id)).all()
        jwks = key_service.public_jwks(session, runtime.key_store, "issuer")
    assert [e.type for e in events] == ["key.created", "key.rotated"]
    assert all(e.actor == actor for e in events)
    assert [k["kid"] for k in jwks.keys] == [v2.kid, v1.kid]
    assert jwks.did.startswith("did:key:z")


def test_private_keys_are_encrypted_at_rest(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        key_service.create_key(
            session,
            runtime.key_store,
            runtime.clock,
            name="issuer",
            key_type=KeyType.ED25519,
            actor=runtime.operator_actor(),
            objects=runtime.objects,
        )
        raw = runtime.key_store.signer(session, "issuer")._key.raw()
    with runtime.engine.connect() as connection:
        blob = connection.execute(sa.text("SELECT private_blob FROM signing_keys")).scalar_one()
    assert blob.startswith("mk1.")
    assert raw.hex() not in blob
    assert b64url_encode(raw) not in blob


def test_another_master_key_cannot_open_stored_keys(runtime: Runtime, tmp_path: Path) -> None:
    with transaction(runtime.sessions) as session:
        key_service.create_key(
            session,
            runtime.key_store,
            runtime.clock,
            name="issuer",
            key_type=KeyType.P256,
            actor=runtime.operator_actor(),
            objects=runtime.objects,
        )
    other = MasterKeyring.create(tmp_path / "other.key", development=True, now=runtime.clock.now())
    with transaction(runtime.sessions) as session, pytest.raises(KeyDecryptionFailed):
        EmbeddedKeyStore(other).signer(session, "issuer")


def test_state_change_and_event_commit_together_or_not_at_all(runtime: Runtime) -> None:
    def crash_after_event() -> None:
        with transaction(runtime.sessions) as session:
            _create_key(session, runtime, "doomed", KeyType.ED25519)
            raise RuntimeError("crash after the event was written")

    with pytest.raises(RuntimeError, match="crash"):
        crash_after_event()
    with transaction(runtime.sessions) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(EventRow)) == 0
        with pytest.raises(KeyNotFound):
            runtime.key_store.versions(session, "doomed")


def test_duplicate_names_and_unknown_keys(runtime: Runtime) -> None:
    actor = runtime.operator_actor()
    with transaction(runtime.sessions) as session:
        _create_key(session, runtime, "dup", KeyType.ED25519)
    with transaction(runtime.sessions) as session, pytest.raises(KeyExists):
        _create_key(session, runtime, "dup", KeyType.P256)
    with transaction(runtime.sessions) as session, pytest.raises(KeyNotFound):
        key_service.rotate_key(
            session,
            runtime.key_store,
            runtime.clock,
            name="ghost",
            actor=actor,
            objects=runtime.objects,
        )
    with transaction(runtime.sessions) as session, pytest.raises(ValidationError):
        runtime.key_store.versions(session, "Bad Name")


def test_concurrent_rotations_never_produce_two_equal_versions(runtime: Runtime) -> None:
    actor = runtime.operator_actor()
    with transaction(runtime.sessions) as session:
        _create_key(session, runtime, "race", KeyType.ED25519)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def rotate() -> None:
        barrier.wait()
        try:
            with transaction(runtime.sessions) as session:
                key_service.rotate_key(
                    session,
                    runtime.key_store,
                    runtime.clock,
                    name="race",
                    actor=actor,
                    objects=runtime.objects,
                )
            outcomes.append("ok")
        except KeyExists:
            outcomes.append("conflict")
        except sa.exc.OperationalError:
            outcomes.append("busy")  # SQLite: a writer waited past its busy timeout

    threads = [threading.Thread(target=rotate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with transaction(runtime.sessions) as session:
        versions = [v.version for v in runtime.key_store.versions(session, "race")]
        rotated = session.scalar(
            sa.select(sa.func.count()).select_from(EventRow).where(EventRow.type == "key.rotated")
        )
    assert versions == list(range(1, len(versions) + 1))
    assert outcomes.count("ok") == len(versions) - 1 == rotated
    assert outcomes.count("ok") >= 1


def test_events_round_trip_with_pseudonyms_and_typed_details(runtime: Runtime) -> None:
    clock = FixedClock(runtime.clock.now())
    subject = runtime.pseudonymizer.pseudonym("identity", "idt_abc")
    with transaction(runtime.sessions) as session:
        first = record_event(
            session,
            KeyRotated(key_name="k", version=2, key_type=KeyType.P256, kid="abc"),
            actor=runtime.operator_actor(),
            at=clock.now(),
            subject=subject,
            object=runtime.objects.digest("signing_key", "abc"),
        )
        clock.advance(timedelta(seconds=1))
    with transaction(runtime.sessions) as session:
        row = session.get(EventRow, first.id)
        assert row is not None
        again = RecordedEvent.from_row(row)
    assert again == first
    assert again.details == {"key_name": "k", "key_type": "P-256", "kid": "abc", "version": 2}
    assert again.at.tzinfo is not None
    with transaction(runtime.sessions) as session:
        for bad in (
            {"actor": "Ravi Kumar"},
            {"subject": "9876543210"},
            {"object": "not-a-hash"},
            {"object": "0" * 64},  # an unkeyed SHA-256: computable by anyone (issue 13)
        ):
            kwargs = {"actor": runtime.operator_actor(), "at": clock.now(), **bad}
            with pytest.raises(ValidationError):
                record_event(
                    session,
                    KeyRotated(key_name="k", version=2, key_type=KeyType.P256, kid="abc"),
                    **kwargs,  # type: ignore[arg-type]
                )
