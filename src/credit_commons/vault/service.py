"""The vault: seal and open personal data under per-subject keys; rotate, rewrap, shred.

Key hierarchy (docs/privacy.md): the KMS master key wraps one *subject key* per
(subject, purpose) — stored in ``vault_subject_keys`` — and each sealed value is an
envelope under that subject key that names it (``vault/envelope.py``).  So:

* master-key rotation rewraps only subject keys (one row per subject and purpose), never
  the sealed data; :meth:`Vault.rewrap` does it in resumable batches;
* erasure deletes a subject's keys (crypto-shredding): every envelope of the subject, in
  the database, in backups and in copies, becomes noise;
* unwrapped subject keys are cached for ``ttl`` seconds (seed 003: 300 s).  Shredding
  drops this process's cache at once, and bumps the erasure generation in ``vault_state``:
  every other process reads that one row at the first vault use of each unit of work and
  drops its whole cache when the generation moved, so no process serves an erased
  subject's key after the erasure committed (erasures are rare; refilling is cheap).
* the same row carries the master-key version the last erasure epoch moved every key to
  (``privacy/epochs.py``): a process whose KMS is older reloads it before it wraps a new
  key, and on PostgreSQL holds the row ``FOR SHARE`` until its transaction ends, so the
  epoch's version bump waits for it and its rewrap sees the new key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import cast

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Table, delete, event, func, insert, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from credit_commons.core.cache import BoundedCache
from credit_commons.core.clock import Clock
from credit_commons.core.db import HotStatement, transaction
from credit_commons.core.errors import ConflictError
from credit_commons.core.ids import new_id
from credit_commons.vault import envelope
from credit_commons.vault.errors import DecryptionFailed, KmsConfigInvalid
from credit_commons.vault.kms import Kms, WrappedKey
from credit_commons.vault.models import SubjectKeyRow, VaultStateRow
from credit_commons.vault.state import (
    move_state,
    read_state,
)

__all__ = ["RewrapReport", "Vault", "subject_key_aad"]

_SUBJECT_KEYS = cast(Table, SubjectKeyRow.__table__)  # Core inserts: no ORM bookkeeping
_INSERT_SUBJECT_KEYS = HotStatement(
    insert(_SUBJECT_KEYS),
    ("key_id", "subject", "purpose", "version", "kek_id", "kek_version", "wrapped", "created_at"),
)


def subject_key_aad(row_key_id: str, subject: str, purpose: str, version: int) -> bytes:
    """The associated data a subject key is wrapped with: its id, owner, purpose, version."""
    return f"vault-subject-key\x00{row_key_id}\x00{subject}\x00{purpose}\x00{version}".encode()


@dataclass(frozen=True)
class RewrapReport:
    """What a rewrap run did."""

    rewrapped: int
    remaining: int
    target_version: int


_KEY_BYTES = 300
"""Bytes charged per cached subject key: its AESGCM object (key schedule included) and id."""


# The subject keys a transaction found or made, per vault, until it ends: published to the
# vault's cache of current keys when it commits, dropped when it (or a savepoint in it)
# rolls back or ends otherwise.
_PENDING = "credit_commons.vault.pending"


def _pending(session: Session, vault: Vault) -> dict[tuple[str, str], tuple[str, int]]:
    by_vault: dict[Vault, dict[tuple[str, str], tuple[str, int]]] = session.info.setdefault(
        _PENDING, {}
    )
    return by_vault.setdefault(vault, {})


@event.listens_for(Session, "after_commit")
def _publish_pending(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: nothing is stored yet
        return
    synced = session.info.get(_SYNCED, {})
    for vault, refs in session.info.pop(_PENDING, {}).items():
        seen = synced.get(vault)
        if seen is not None:
            vault._publish(refs, seen[0])


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending_on_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    # Any rollback, a savepoint's too: a key made in it may be gone.  Dropping is always
    # safe (the next seal reads the keys again).
    del previous_transaction
    session.info.pop(_PENDING, None)


@event.listens_for(Session, "after_transaction_end")
def _drop_pending_at_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost one: committed (published) or not
        session.info.pop(_PENDING, None)
        session.info.pop(_SYNCED, None)


# What each vault read of ``vault_state`` in the current transaction: the erasure generation
# and whether the row is held FOR SHARE.  Dropped when the transaction ends.
_SYNCED = "credit_commons.vault.synced"


class Vault:
    """Seals and opens values under per-(subject, purpose) keys wrapped by a KMS."""

    def __init__(
        self,
        kms: Kms,
        clock: Clock,
        *,
        ttl: float = 300.0,
        capacity: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kms = kms
        self._clock = clock
        # Cached as ready AESGCM objects: building one (the AES key schedule) costs more
        # than decrypting a small value.  Keyed by the key id's ASCII bytes, as envelopes
        # carry it.
        self._keys: BoundedCache[bytes, AESGCM] = BoundedCache(
            max_entries=capacity,
            max_bytes=capacity * _KEY_BYTES,
            size=lambda key_id, _cipher: len(key_id) + _KEY_BYTES,
            ttl=ttl,
            now=monotonic,
        )
        # The current key of each (subject, purpose) this process has seen committed.
        self._current: BoundedCache[tuple[str, str], tuple[str, int]] = BoundedCache(
            max_entries=capacity,
            max_bytes=capacity * 256,
            size=lambda ref, key: len(ref[0]) + len(ref[1]) + len(key[0]) + 64,
        )
        # The erasure generation the caches are valid for (None: not read yet), and a lock
        # that makes "check the generation, then cache" and "move it, then drop" atomic:
        # a key read under an older generation must never enter a cache a newer one cleared.
        self._generation: int | None = None
        self._generation_lock = threading.Lock()

    # -- what other processes changed -------------------------------------------------------

    def _sync(self, session: Session, *, wrapping: bool = False) -> int:
        # Once per transaction (twice when it also wraps: then under the row lock).  Returns
        # the generation this transaction saw.
        synced: dict[Vault, tuple[int, bool]] = session.info.setdefault(_SYNCED, {})
        seen = synced.get(self)
        if seen is not None and (seen[1] or not wrapping):
            return seen[0]
        state = read_state(session, lock=wrapping)
        return self._synced(synced, state, wrapping=wrapping)

    def note_state(
        self, session: Session, state: tuple[int | None, int | None, int | None]
    ) -> None:
        """Take ``state`` — the columns of :func:`state_subquery` (``NULL`` when there is no state
        row yet), read in ``session``'s unit of work by a statement of the caller's that
        joined it in — as this unit of work's read of the vault's state, instead of a
        statement of its own at the first :meth:`open`: cached keys are dropped if it shows
        an erasure elsewhere, and the KMS refreshed if it shows a rotation.  Only for a read
        the caller made in this unit of work (a retrieval reads it with the consent and the
        credentials, one statement); a state already read here is kept.  Raises what
        the KMS's ``refresh`` raises."""
        synced: dict[Vault, tuple[int, bool]] = session.info.setdefault(_SYNCED, {})
        if self not in synced:
            generation, kek_version, destroyed_below = state
            read = (int(generation or 0), int(kek_version or 0), int(destroyed_below or 0))
            self._synced(synced, read, wrapping=False)

    def _synced(
        self,
        synced: dict[Vault, tuple[int, bool]],
        state: tuple[int, int, int],
        *,
        wrapping: bool,
    ) -> int:
        generation, kek_version, destroyed_below = state
        synced[self] = (generation, wrapping)
        if generation != self._generation:
            with self._generation_lock:
                if self._generation is None or generation > self._generation:
                    self._keys.clear()
                    self._current.clear()
                    self._generation = generation
        if (
            kek_version > self.kms.current_version()
            or destroyed_below > self.kms.min_decrypt_version
        ):
            self.kms.refresh()  # an epoch rotated or destroyed in another process
            if wrapping and kek_version > self.kms.current_version():
                raise KmsConfigInvalid(
                    f"the master key is at version {self.kms.current_version()} here, but the "
                    f"database is at version {kek_version}: every process must share the KMS"
                )
        return generation

    def _cache(self, generation: int, key_id: str, cipher: AESGCM) -> None:
        # Cache a key read by a transaction that saw ``generation``; a key read before an
        # erasure this process already knows of stays out (it may be the erased subject's).
        with self._generation_lock:
            if generation == self._generation:
                self._keys.put(key_id.encode("ascii"), cipher)

    # -- subject keys ---------------------------------------------------------------------

    def _unwrap(self, row: SubjectKeyRow, generation: int) -> AESGCM:
        wrapped = WrappedKey(kek_id=row.kek_id, version=row.kek_version, blob=bytes(row.wrapped))
        aad = subject_key_aad(row.key_id, row.subject, row.purpose, row.version)
        cipher = AESGCM(self.kms.unwrap(wrapped, aad=aad))
        self._cache(generation, row.key_id, cipher)
        return cipher

    def _new_key(
        self, subject: str, purpose: str, version: int
    ) -> tuple[dict[str, object], AESGCM]:
        # A new subject key: its ``vault_subject_keys`` row (as insert values) and cipher.
        key = AESGCM.generate_key(256)
        key_id = new_id("sk")
        wrapped = self.kms.wrap(key, aad=subject_key_aad(key_id, subject, purpose, version))
        row = {
            "key_id": key_id,
            "subject": subject,
            "purpose": purpose,
            "version": version,
            "kek_id": wrapped.kek_id,
            "kek_version": wrapped.version,
            "wrapped": wrapped.blob,
            "created_at": self._clock.now(),
        }
        return row, AESGCM(key)

    def _current_keys(
        self, session: Session, subjects: Collection[str], purpose: str
    ) -> dict[str, tuple[str, int, AESGCM]]:
        # The current key of each subject for ``purpose``: cached ones first (committed, or
        # found or made earlier in this transaction), then one query per 500 subjects, then
        # one multi-row insert for the subjects that have none.
        found: dict[str, tuple[str, int, AESGCM]] = {}
        missing: list[str] = []
        generation = self._sync(session)
        pending = _pending(session, self)
        for subject in subjects:
            ref = self._current.get((subject, purpose)) or pending.get((subject, purpose))
            cached = self._keys.get(ref[0].encode("ascii")) if ref is not None else None
            if ref is not None and cached is not None:
                found[subject] = (ref[0], ref[1], cached)
            else:
                missing.append(subject)
        if not missing:
            return found
        rows: dict[str, SubjectKeyRow] = {}
        for lo in range(0, len(missing), 500):
            for row in session.scalars(
                select(SubjectKeyRow).where(
                    SubjectKeyRow.subject.in_(missing[lo : lo + 500]),
                    SubjectKeyRow.purpose == purpose,
                )
            ):
                if row.subject not in rows or row.version > rows[row.subject].version:
                    rows[row.subject] = row
        keyless: list[str] = []
        for subject in missing:
            current = rows.get(subject)
            if current is None:
                keyless.append(subject)
                continue
            cipher = self._keys.get(current.key_id.encode("ascii")) or self._unwrap(
                current, generation
            )
            found[subject] = (current.key_id, current.version, cipher)
            pending[(subject, purpose)] = (current.key_id, current.version)
        if keyless:
            # Wrapped under (at least) the version the database names, with the state row
            # held until commit: an epoch close cannot move past a key it would not rewrap.
            self._sync(session, wrapping=True)
            new = [self._new_key(subject, purpose, version=1) for subject in keyless]
            try:
                with session.begin_nested():
                    _INSERT_SUBJECT_KEYS.executemany(session, [values for values, _ in new])
            except DbIntegrityError as e:
                raise ConflictError("a concurrent request created a subject key; retry") from e
            for values, cipher in new:
                key_id, subject = str(values["key_id"]), str(values["subject"])
                self._cache(generation, key_id, cipher)
                found[subject] = (key_id, 1, cipher)
                pending[(subject, purpose)] = (key_id, 1)
        return found

    def _publish(self, refs: dict[tuple[str, str], tuple[str, int]], generation: int) -> None:
        # The keys a transaction found or made, once it has committed: only then are they
        # known to be stored.  (A key made in a transaction that rolled back must never be
        # used again: what it sealed could not be opened once its cache entry expired.)
        # A transaction that saw an older erasure generation publishes nothing.
        with self._generation_lock:
            if generation != self._generation:
                return
            for ref, key in refs.items():
                self._current.put(ref, key)

    def ensure_keys(self, session: Session, subjects: Collection[str], purpose: str) -> None:
        """Find or make the current key of every subject for ``purpose`` now (one query and
        one insert for all), so that a :meth:`seal_many` later in this transaction finds
        them ready.  Raises what :meth:`seal_many` raises for its keys."""
        self._current_keys(session, subjects, purpose)

    # -- sealing --------------------------------------------------------------------------

    def seal(
        self, session: Session, plaintext: bytes, *, subject: str, purpose: str, record: str
    ) -> bytes:
        """Seal ``plaintext`` for (subject, purpose), bound to ``record``.

        Raises :class:`ConflictError` when a concurrent transaction made the subject's first
        key for ``purpose`` at the same moment (retry)."""
        return self.seal_many(session, [(plaintext, subject, record)], purpose=purpose)[0]

    def seal_many(
        self, session: Session, items: Sequence[tuple[bytes, str, str]], *, purpose: str
    ) -> list[bytes]:
        """Seal many ``(plaintext, subject, record)`` values for ``purpose`` at once: the
        subjects' keys are looked up together and the missing ones made in one insert.
        Each envelope is exactly what :meth:`seal` would make."""
        keys = self._current_keys(session, {subject for _, subject, _ in items}, purpose)
        out = []
        for plaintext, subject, record in items:
            key_id, version, key = keys[subject]
            out.append(
                envelope.seal(
                    key,
                    plaintext,
                    subject_key_ref=envelope.SubjectKeyRef(key_id=key_id, version=version),
                    context=envelope.SealContext(subject=subject, purpose=purpose, record=record),
                )
            )
        return out

    def open(
        self, session: Session, sealed: bytes, *, subject: str, purpose: str, record: str
    ) -> bytes:
        """Open an envelope sealed for (subject, purpose, record).

        Raises :class:`DecryptionFailed` for every failure: unknown or shredded key, a key
        of another subject or purpose, tampering, a retired master-key version.
        """
        try:
            # The hot path: the key id straight from the header, the cache without a call.
            if type(sealed) is not bytes or sealed[:4] != envelope.MAGIC or len(sealed) < 5:
                raise DecryptionFailed()
            key_ref = sealed[5 : 5 + sealed[4]]
            synced = session.info.get(_SYNCED)
            if synced is None or self not in synced:
                self._sync(session)  # first use in this unit of work: erasures elsewhere?
            cipher = self._keys.get(key_ref)
            if cipher is None:
                row = session.get(SubjectKeyRow, key_ref.decode("ascii"))
                if row is None or row.subject != subject or row.purpose != purpose:
                    raise DecryptionFailed()
                cipher = self._unwrap(row, self._sync(session))
            context = envelope.context_bytes(subject, purpose, record)
        except DecryptionFailed:
            raise
        except Exception as e:  # one opaque error: never say which check failed
            raise DecryptionFailed() from e
        return envelope.open_parsed(sealed, 9 + sealed[4], cipher, context)

    # -- lifecycle ------------------------------------------------------------------------

    def has_keys(self, session: Session, subject: str) -> bool:
        """Whether any key of ``subject`` is stored: ``False`` once it was shredded (or the
        restore of an older backup deleted the keys its source no longer had)."""
        found = session.scalar(
            select(SubjectKeyRow.key_id).where(SubjectKeyRow.subject == subject).limit(1)
        )
        return found is not None

    def shred(self, session: Session, subject: str) -> int:
        """Delete every key of ``subject`` (crypto-shredding) and bump the erasure generation,
        so every process drops its cached keys at its next unit of work; returns how many."""
        key_ids = list(
            session.scalars(select(SubjectKeyRow.key_id).where(SubjectKeyRow.subject == subject))
        )
        session.execute(delete(SubjectKeyRow).where(SubjectKeyRow.subject == subject))
        move_state(session, erasure_generation=VaultStateRow.erasure_generation + 1)
        for key_id in key_ids:
            self._keys.pop(key_id.encode("ascii"))
        self._current.pop_where(lambda ref: ref[0] == subject)
        return len(key_ids)

    def rewrap(
        self,
        sessions: sessionmaker[Session],
        *,
        batch: int = 1000,
        progress: Callable[[int, int], None] | None = None,
        target: int | None = None,
        deadline: float | None = None,
        on_batch: Callable[[Session, int], None] | None = None,
    ) -> RewrapReport:
        """Rewrap every subject key under a master version below ``target`` (default: the
        newest) with the newest.

        Resumable: each batch commits on its own, and a run only ever selects keys still
        below the target version, so an interrupted run continues where it stopped.  With
        ``deadline`` (a ``time.monotonic()`` value) it stops after the batch that passes it
        (``remaining`` then says how many are left).  ``on_batch(session, n)`` runs in each
        batch's transaction, so what it records commits with the batch.  Raises what the KMS
        raises.
        """
        target = self.kms.current_version() if target is None else target
        with transaction(sessions) as session:
            total = int(
                session.scalar(
                    select(func.count())
                    .select_from(SubjectKeyRow)
                    .where(SubjectKeyRow.kek_version < target)
                )
                or 0
            )
        done = 0
        while True:
            with transaction(sessions) as session:
                rows = session.scalars(
                    select(SubjectKeyRow)
                    .where(SubjectKeyRow.kek_version < target)
                    .order_by(SubjectKeyRow.key_id)
                    .limit(batch)
                ).all()
                if not rows:
                    break
                for row in rows:
                    aad = subject_key_aad(row.key_id, row.subject, row.purpose, row.version)
                    key = self.kms.unwrap(
                        WrappedKey(
                            kek_id=row.kek_id, version=row.kek_version, blob=bytes(row.wrapped)
                        ),
                        aad=aad,
                    )
                    wrapped = self.kms.wrap(key, aad=aad)
                    row.kek_id, row.kek_version, row.wrapped = (
                        wrapped.kek_id,
                        wrapped.version,
                        wrapped.blob,
                    )
                done += len(rows)
                if on_batch is not None:
                    on_batch(session, len(rows))
            if progress:
                progress(done, total)
            if deadline is not None and time.monotonic() >= deadline:
                break
        with transaction(sessions) as session:
            remaining = int(
                session.scalar(
                    select(func.count())
                    .select_from(SubjectKeyRow)
                    .where(SubjectKeyRow.kek_version < target)
                )
                or 0
            )
        return RewrapReport(done, remaining, target)

    def restore_keys(
        self,
        target: sessionmaker[Session],
        source: sessionmaker[Session],
        *,
        batch: int = 1000,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, int]:
        """Bring a restored database's subject keys up to date from the current key material
        (the live database, or a backup newer than the last erasure epoch).

        A key the source holds is replaced by the source's (wrapped under a version the KMS
        still has); a key the source does not hold is deleted — its subject was erased since
        the backup (or it was never committed there).  So the restored data opens for every
        subject that still exists, and for no erased one.  Resumable: each batch commits.
        Returns how many keys were updated and deleted.  Raises :class:`ConflictError` when
        the source's key material is older than the target's (the two swapped).
        """
        with transaction(source) as live:
            state = read_state(live)
        with transaction(target) as session:
            if read_state(session)[1] > state[1]:
                raise ConflictError(
                    "the source's subject keys are older than this database's: restore keys "
                    "from the live database or a newer backup"
                )
        with transaction(target) as session:
            total = int(session.scalar(select(func.count()).select_from(SubjectKeyRow)) or 0)
        done, updated, deleted, after = 0, 0, 0, ""
        while True:
            with transaction(target) as session:
                rows = session.scalars(
                    select(SubjectKeyRow)
                    .where(SubjectKeyRow.key_id > after)
                    .order_by(SubjectKeyRow.key_id)
                    .limit(batch)
                ).all()
                if not rows:
                    break
                after = rows[-1].key_id
                with transaction(source) as live:
                    current = {
                        r.key_id: r
                        for r in live.scalars(
                            select(SubjectKeyRow).where(
                                SubjectKeyRow.key_id.in_([r.key_id for r in rows])
                            )
                        )
                    }
                for row in rows:
                    fresh = current.get(row.key_id)
                    same = fresh is not None and (fresh.subject, fresh.purpose, fresh.version) == (
                        row.subject,
                        row.purpose,
                        row.version,
                    )
                    if fresh is None or not same:
                        session.delete(row)
                        deleted += 1
                    else:
                        row.kek_id, row.kek_version = fresh.kek_id, fresh.kek_version
                        row.wrapped = bytes(fresh.wrapped)
                        updated += 1
                done += len(rows)
            if progress:
                progress(done, total)
        with transaction(target) as session:
            generation, kek_version, destroyed_below = read_state(session)
            move_state(
                session,
                erasure_generation=max(generation, state[0]) + 1,
                kek_version=max(kek_version, state[1]),
                destroyed_below=max(destroyed_below, state[2]),
            )
        self.drop_cache()
        return {"updated": updated, "deleted": deleted}

    def keys_below(self, session: Session, version: int) -> int:
        """How many subject keys are still wrapped under a master version below ``version``."""
        return int(
            session.scalar(
                select(func.count())
                .select_from(SubjectKeyRow)
                .where(SubjectKeyRow.kek_version < version)
            )
            or 0
        )

    def status(self, session: Session) -> dict[str, object]:
        """Subject keys by master-key version, and the KMS's versions."""
        counts = session.execute(
            select(SubjectKeyRow.kek_version, func.count()).group_by(SubjectKeyRow.kek_version)
        ).all()
        return {
            "kek_id": self.kms.kek_id,
            "current_version": self.kms.current_version(),
            "versions": self.kms.versions(),
            "min_decrypt_version": self.kms.min_decrypt_version,
            "subject_keys_by_version": {int(v): int(n) for v, n in counts},
        }

    def drop_cache(self) -> None:
        """Forget every cached subject key."""
        self._keys.clear()
        self._current.clear()
