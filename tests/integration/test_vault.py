"""The vault on SQLite and PostgreSQL with the local KMS: seal, open, shred, rotate, rewrap."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from credit_commons.core.db import transaction
from credit_commons.runtime import Runtime
from credit_commons.vault import envelope
from credit_commons.vault import service as vault_service
from credit_commons.vault.errors import DecryptionFailed
from credit_commons.vault.models import SubjectKeyRow
from credit_commons.vault.service import Vault
from credit_commons.vault.state import state_subquery

CTX = {"subject": "idt_abcdefghijkl", "purpose": "profile", "record": "identity:name"}


def test_seal_open_and_every_misuse_fails_opaquely(runtime: Runtime) -> None:
    vault = runtime.vault
    with transaction(runtime.sessions) as session:
        sealed = vault.seal(session, b"Ravi Kumar", **CTX)
    assert b"Ravi" not in sealed
    with transaction(runtime.read_sessions) as session:
        assert vault.open(session, sealed, **CTX) == b"Ravi Kumar"
        for wrong in (
            {**CTX, "record": "identity:phone"},
            {**CTX, "purpose": "credentials"},
            {**CTX, "subject": "idt_zzzzzzzzzzzz"},
        ):
            with pytest.raises(DecryptionFailed) as info:
                vault.open(session, sealed, **wrong)
            assert info.value.code == "vault.decryption_failed"
        for i in (0, 10, len(sealed) // 2, len(sealed) - 1):
            tampered = bytearray(sealed)
            tampered[i] ^= 0x01
            with pytest.raises(DecryptionFailed):
                vault.open(session, bytes(tampered), **CTX)
        with pytest.raises(DecryptionFailed):
            vault.open(session, sealed[:-5], **CTX)


def test_one_subject_key_per_subject_and_purpose(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        for record in ("a", "b", "c"):
            runtime.vault.seal(session, b"x", **{**CTX, "record": record})
        runtime.vault.seal(session, b"x", **{**CTX, "purpose": "credentials"})
        count = session.scalar(sa.select(sa.func.count()).select_from(SubjectKeyRow))
    assert count == 2


def test_shredding_makes_every_envelope_unopenable(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        sealed = runtime.vault.seal(session, b"secret", **CTX)
        other = runtime.vault.seal(session, b"kept", **{**CTX, "subject": "idt_otherotherot"})
    with transaction(runtime.sessions) as session:
        assert runtime.vault.shred(session, CTX["subject"]) == 1
    with transaction(runtime.read_sessions) as session:
        with pytest.raises(DecryptionFailed):
            runtime.vault.open(session, sealed, **CTX)
        assert (
            runtime.vault.open(session, other, **{**CTX, "subject": "idt_otherotherot"}) == b"kept"
        )


def test_another_process_drops_an_erased_key_at_its_next_unit_of_work(runtime: Runtime) -> None:
    # No TTL: the other process learns of the erasure from the database (vault_state) the
    # first time it uses the vault in a unit of work that began after the erasure committed.
    other_process = Vault(runtime.vault.kms, runtime.clock, ttl=300)
    with transaction(runtime.sessions) as session:
        sealed = runtime.vault.seal(session, b"secret", **CTX)
        kept = runtime.vault.seal(session, b"kept", **{**CTX, "subject": "idt_otherotherot"})
    with transaction(runtime.read_sessions) as session:
        assert other_process.open(session, sealed, **CTX) == b"secret"  # now cached there
        assert other_process.open(session, kept, **{**CTX, "subject": "idt_otherotherot"})
    with transaction(runtime.sessions) as session:
        # ... and the subject's current key too (it sealed under it).
        assert envelope.key_id_of(other_process.seal(session, b"x", **CTX)) == (
            envelope.key_id_of(sealed)
        )
    with transaction(runtime.sessions) as session:
        runtime.vault.shred(session, CTX["subject"])
    with transaction(runtime.read_sessions) as session, pytest.raises(DecryptionFailed):
        other_process.open(session, sealed, **CTX)
    with transaction(runtime.read_sessions) as session:
        assert other_process.open(session, kept, **{**CTX, "subject": "idt_otherotherot"})
    # Nor does it seal under the erased subject's cached current key.
    with transaction(runtime.sessions) as session:
        fresh = other_process.seal(session, b"new", **CTX)
    assert envelope.key_id_of(fresh) != envelope.key_id_of(sealed)


def test_a_state_the_caller_read_with_its_own_statement_drops_an_erased_key(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Consent's retrieval reads the vault's state joined into its own read of the consent
    # (state_subquery) and hands it over (note_state): the vault must then act on it as on
    # its own read — drop the keys of an erasure made in another process — and make no read
    # of its own.
    other_process = Vault(runtime.vault.kms, runtime.clock, ttl=300)
    with transaction(runtime.sessions) as session:
        sealed = runtime.vault.seal(session, b"secret", **CTX)
    with transaction(runtime.read_sessions) as session:
        assert other_process.open(session, sealed, **CTX) == b"secret"  # now cached there
    with transaction(runtime.sessions) as session:
        runtime.vault.shred(session, CTX["subject"])
    state = sa.select(*state_subquery().c)
    with transaction(runtime.read_sessions) as session:
        read = tuple(session.execute(state).one())
        assert read[0] >= 1  # the erasure moved the generation
        other_process.note_state(session, read)
        # The vault's own read runs precompiled on the DB-API cursor (no SQLAlchemy
        # execute event sees it): count the calls of the function that makes it.
        reads: list[bool] = []
        real = vault_service.read_state

        def counted(session: Any, *, lock: bool = False) -> tuple[int, int, int]:
            reads.append(lock)
            return real(session, lock=lock)

        monkeypatch.setattr(vault_service, "read_state", counted)
        with pytest.raises(DecryptionFailed):
            other_process.open(session, sealed, **CTX)
        assert reads == []
    # And the count sees a read where one is made: a unit of work without a noted state.
    with transaction(runtime.read_sessions) as session, pytest.raises(DecryptionFailed):
        other_process.open(session, sealed, **CTX)
    assert reads == [False]


def test_rotate_rewrap_resumes_and_retires_old_versions(runtime: Runtime) -> None:
    vault = runtime.vault
    sealed = {}
    with transaction(runtime.sessions) as session:
        for i in range(7):
            ctx = {**CTX, "subject": f"idt_subject{i:05d}"}
            sealed[i] = (ctx, vault.seal(session, f"v{i}".encode(), **ctx))
    new_version = vault.kms.rotate()
    assert new_version == 2

    # An interrupted rewrap: the KMS fails during the second batch.
    real_wrap = vault.kms.wrap
    calls = [0]

    def flaky_wrap(key: bytes, *, aad: bytes):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == 4:
            raise RuntimeError("HSM went away")
        return real_wrap(key, aad=aad)

    vault.kms.wrap = flaky_wrap  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="HSM went away"):
        vault.rewrap(runtime.sessions, batch=3)
    vault.kms.wrap = real_wrap  # type: ignore[method-assign]
    with transaction(runtime.read_sessions) as session:
        by_version = vault.status(session)["subject_keys_by_version"]
    assert by_version == {1: 4, 2: 3}  # the first batch committed, the second rolled back

    seen: list[tuple[int, int]] = []
    report = vault.rewrap(runtime.sessions, batch=3, progress=lambda d, t: seen.append((d, t)))
    assert (report.rewrapped, report.remaining, report.target_version) == (4, 0, 2)
    assert seen[-1] == (4, 4)
    vault.kms.set_min_decrypt_version(2)
    vault.drop_cache()
    with transaction(runtime.read_sessions) as session:
        for ctx, envelope in sealed.values():
            assert vault.open(session, envelope, **ctx).startswith(b"v")
        assert vault.status(session)["subject_keys_by_version"] == {2: 7}


def test_a_key_made_in_a_rolled_back_transaction_is_not_used_again(runtime: Runtime) -> None:
    # The subject's first key is made, and cached, in a transaction that then rolls back:
    # its row is gone, so a later seal must make (and use) a key that is really stored.
    def failing_unit_of_work() -> None:
        with transaction(runtime.sessions) as session:
            runtime.vault.seal(session, b"lost", **CTX)
            raise RuntimeError("the rest of the unit of work failed")

    with pytest.raises(RuntimeError):
        failing_unit_of_work()
    with transaction(runtime.sessions) as session:
        sealed = runtime.vault.seal(session, b"kept", **CTX)
    fresh = Vault(runtime.vault.kms, runtime.clock)  # another process: nothing cached
    with transaction(runtime.read_sessions) as session:
        assert fresh.open(session, sealed, **CTX) == b"kept"
        assert runtime.vault.open(session, sealed, **CTX) == b"kept"


def test_a_key_made_in_a_rolled_back_savepoint_is_not_used_again(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        try:
            with session.begin_nested():
                runtime.vault.seal(session, b"lost", **CTX)
                raise RuntimeError("the savepoint's work failed")
        except RuntimeError:
            pass
        sealed = runtime.vault.seal(session, b"kept", **CTX)
    fresh = Vault(runtime.vault.kms, runtime.clock)
    with transaction(runtime.read_sessions) as session:
        assert fresh.open(session, sealed, **CTX) == b"kept"


def test_keys_of_a_committed_transaction_are_reused_without_a_query(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        first = runtime.vault.seal(session, b"one", **CTX)
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *rest: object) -> None:
        statements.append(statement)

    sa.event.listen(runtime.engine, "before_cursor_execute", record)
    try:
        with transaction(runtime.sessions) as session:
            second = runtime.vault.seal(session, b"two", **{**CTX, "record": "identity:x"})
    finally:
        sa.event.remove(runtime.engine, "before_cursor_execute", record)
    assert not [s for s in statements if "vault_subject_keys" in s]
    header = 5 + first[4] + 4  # magic, key id length, key id, key version
    assert first[:header] == second[:header]  # the same key in both


def test_keys_are_published_only_when_the_outermost_transaction_commits(
    runtime: Runtime,
) -> None:
    # The subject's key is made, then a second call in the same transaction finds it and
    # makes another subject's key in a savepoint, which is released; then the transaction
    # rolls back.  Releasing that savepoint must not have made the first key current.
    def rolled_back() -> None:
        with transaction(runtime.sessions) as session:
            runtime.vault.seal(session, b"lost", **CTX)
            runtime.vault.seal_many(
                session,
                [(b"a", CTX["subject"], "r1"), (b"b", "idt_otherotherot", "r2")],
                purpose=CTX["purpose"],
            )
            raise RuntimeError("the unit of work failed after the savepoint")

    with pytest.raises(RuntimeError):
        rolled_back()
    with transaction(runtime.sessions) as session:
        sealed = runtime.vault.seal(session, b"kept", **CTX)
    fresh = Vault(runtime.vault.kms, runtime.clock)
    with transaction(runtime.read_sessions) as session:
        assert fresh.open(session, sealed, **CTX) == b"kept"
