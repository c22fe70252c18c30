"""The vault: seal and open personal data under per-subject keys; rotate, rewrap, shred.

Key hierarchy (docs/privacy.md): the KMS master key wraps one *subject key* per
(subject, purpose) — stored in ``vault_subject_keys`` — and each sealed value is an
envelope under that subject key that names it (``vault/envelope.py``).  So:

* master-key rotation rewraps only subject keys (one row per subject and purpose), never
  the sealed data; :meth:`Vault.rewrap` does it in resumable batches;
* erasure deletes a subject's keys (crypto-shredding): every envelope of the subject, in
  the database, in backups and in copies, becomes noise;
* unwrapped subject keys are cached for ``ttl`` seconds (seed 003: 300 s).  Shredding
  drops this process's cache at once; another process's cache expires within the TTL.
"""

from __future__ import annotations

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
from credit_commons.vault.errors import DecryptionFailed
from credit_commons.vault.kms import Kms, WrappedKey
from credit_commons.vault.models import SubjectKeyRow

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
    for vault, refs in session.info.pop(_PENDING, {}).items():
        vault._publish(refs)


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

    # -- subject keys ---------------------------------------------------------------------

    def _unwrap(self, row: SubjectKeyRow) -> AESGCM:
        wrapped = WrappedKey(kek_id=row.kek_id, version=row.kek_version, blob=bytes(row.wrapped))
        aad = subject_key_aad(row.key_id, row.subject, row.purpose, row.version)
        cipher = AESGCM(self.kms.unwrap(wrapped, aad=aad))
        self._keys.put(row.key_id.encode("ascii"), cipher)
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
        new: list[tuple[dict[str, object], AESGCM]] = []
        for subject in missing:
            current = rows.get(subject)
            if current is None:
                new.append(self._new_key(subject, purpose, version=1))
                continue
            cipher = self._keys.get(current.key_id.encode("ascii")) or self._unwrap(current)
            found[subject] = (current.key_id, current.version, cipher)
            pending[(subject, purpose)] = (current.key_id, current.version)
        if new:
            try:
                with session.begin_nested():
                    _INSERT_SUBJECT_KEYS.executemany(session, [values for values, _ in new])
            except DbIntegrityError as e:
                raise ConflictError("a concurrent request created a subject key; retry") from e
            for values, cipher in new:
                key_id, subject = str(values["key_id"]), str(values["subject"])
                self._keys.put(key_id.encode("ascii"), cipher)
                found[subject] = (key_id, 1, cipher)
                pending[(subject, purpose)] = (key_id, 1)
        return found

    def _publish(self, refs: dict[tuple[str, str], tuple[str, int]]) -> None:
        # The keys a transaction found or made, once it has committed: only then are they
        # known to be stored.  (A key made in a transaction that rolled back must never be
        # used again: what it sealed could not be opened once its cache entry expired.)
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
            cipher = self._keys.get(key_ref)
            if cipher is None:
                row = session.get(SubjectKeyRow, key_ref.decode("ascii"))
                if row is None or row.subject != subject or row.purpose != purpose:
                    raise DecryptionFailed()
                cipher = self._unwrap(row)
            context = envelope.context_bytes(subject, purpose, record)
        except DecryptionFailed:
            raise
        except Exception as e:  # one opaque error: never say which check failed
            raise DecryptionFailed() from e
        return envelope.open_parsed(sealed, 9 + sealed[4], cipher, context)

    # -- lifecycle ------------------------------------------------------------------------

    def shred(self, session: Session, subject: str) -> int:
        """Delete every key of ``subject`` (crypto-shredding); returns how many."""
        key_ids = list(
            session.scalars(select(SubjectKeyRow.key_id).where(SubjectKeyRow.subject == subject))
        )
        session.execute(delete(SubjectKeyRow).where(SubjectKeyRow.subject == subject))
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
    ) -> RewrapReport:
        """Rewrap every subject key still under an older master version with the newest.

        Resumable: each batch commits on its own, and a run only ever selects keys still
        below the target version, so an interrupted run continues where it stopped.
        """
        target = self.kms.current_version()
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
            if progress:
                progress(done, total)
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
