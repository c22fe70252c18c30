"""The vault: seal and open personal data under per-subject keys; rotate, rewrap, shred.

Key hierarchy (docs/privacy.md): the KMS master key wraps one *subject key* per
(subject, purpose) — stored in ``vault_subject_keys`` — and each sealed value carries its
own record key wrapped under that subject key (``vault/envelope.py``).  So:

* master-key rotation rewraps only subject keys (one row per subject and purpose), never
  the sealed data; :meth:`Vault.rewrap` does it in resumable batches;
* erasure deletes a subject's keys (crypto-shredding): every envelope of the subject, in
  the database, in backups and in copies, becomes noise;
* unwrapped subject keys are cached for ``ttl`` seconds (seed 003: 300 s).  Shredding
  drops this process's cache at once; another process's cache expires within the TTL.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session, sessionmaker

from credit_commons.core.clock import Clock
from credit_commons.core.db import transaction
from credit_commons.core.errors import ConflictError
from credit_commons.core.ids import new_id
from credit_commons.vault import envelope
from credit_commons.vault.errors import DecryptionFailed
from credit_commons.vault.kms import Kms, WrappedKey
from credit_commons.vault.models import SubjectKeyRow

__all__ = ["RewrapReport", "Vault", "subject_key_aad"]


def subject_key_aad(row_key_id: str, subject: str, purpose: str, version: int) -> bytes:
    """The associated data a subject key is wrapped with: its id, owner, purpose, version."""
    return f"vault-subject-key\x00{row_key_id}\x00{subject}\x00{purpose}\x00{version}".encode()


@dataclass(frozen=True)
class RewrapReport:
    """What a rewrap run did."""

    rewrapped: int
    remaining: int
    target_version: int


class _TtlCache:
    def __init__(self, ttl: float, capacity: int, now: Callable[[], float]) -> None:
        self._ttl, self._capacity, self._now = ttl, capacity, now
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[0] < self._now():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return item[1]

    def put(self, key: str, value: bytes) -> None:
        with self._lock:
            self._data[key] = (self._now() + self._ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self._capacity:
                self._data.popitem(last=False)

    def drop(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


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
        self._keys = _TtlCache(ttl, capacity, monotonic)
        self._current: dict[tuple[str, str], tuple[str, int]] = {}
        self._lock = threading.Lock()

    # -- subject keys ---------------------------------------------------------------------

    def _unwrap(self, row: SubjectKeyRow) -> bytes:
        wrapped = WrappedKey(kek_id=row.kek_id, version=row.kek_version, blob=bytes(row.wrapped))
        key = self.kms.unwrap(
            wrapped, aad=subject_key_aad(row.key_id, row.subject, row.purpose, row.version)
        )
        self._keys.put(row.key_id, key)
        return key

    def _current_key(self, session: Session, subject: str, purpose: str) -> tuple[str, int, bytes]:
        ref = self._current.get((subject, purpose))
        if ref is not None:
            cached = self._keys.get(ref[0])
            if cached is not None:
                return ref[0], ref[1], cached
        row = session.scalars(
            select(SubjectKeyRow)
            .where(SubjectKeyRow.subject == subject, SubjectKeyRow.purpose == purpose)
            .order_by(SubjectKeyRow.version.desc())
            .limit(1)
        ).first()
        if row is None:
            row = self._create(session, subject, purpose, version=1)
            key = self._keys.get(row.key_id)
            assert key is not None
        else:
            key = self._keys.get(row.key_id) or self._unwrap(row)
        with self._lock:
            self._current[(subject, purpose)] = (row.key_id, row.version)
        return row.key_id, row.version, key

    def _create(self, session: Session, subject: str, purpose: str, version: int) -> SubjectKeyRow:
        key = secrets.token_bytes(32)
        key_id = new_id("sk")
        wrapped = self.kms.wrap(key, aad=subject_key_aad(key_id, subject, purpose, version))
        row = SubjectKeyRow(
            key_id=key_id,
            subject=subject,
            purpose=purpose,
            version=version,
            kek_id=wrapped.kek_id,
            kek_version=wrapped.version,
            wrapped=wrapped.blob,
            created_at=self._clock.now(),
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except DbIntegrityError as e:
            raise ConflictError("a concurrent request created this subject key; retry") from e
        self._keys.put(key_id, key)
        return row

    # -- sealing --------------------------------------------------------------------------

    def seal(
        self, session: Session, plaintext: bytes, *, subject: str, purpose: str, record: str
    ) -> bytes:
        """Seal ``plaintext`` for (subject, purpose), bound to ``record``."""
        key_id, version, key = self._current_key(session, subject, purpose)
        return envelope.seal(
            key,
            plaintext,
            subject_key_ref=envelope.SubjectKeyRef(key_id=key_id, version=version),
            context=envelope.SealContext(subject=subject, purpose=purpose, record=record),
        )

    def open(
        self, session: Session, sealed: bytes, *, subject: str, purpose: str, record: str
    ) -> bytes:
        """Open an envelope sealed for (subject, purpose, record).

        Raises :class:`DecryptionFailed` for every failure: unknown or shredded key, a key
        of another subject or purpose, tampering, a retired master-key version.
        """
        try:
            header = envelope.parse_header(sealed)
            key_id = header.subject_key_ref.key_id
            key = self._keys.get(key_id)
            if key is None:
                row = session.get(SubjectKeyRow, key_id)
                if row is None or row.subject != subject or row.purpose != purpose:
                    raise DecryptionFailed()
                key = self._unwrap(row)
        except DecryptionFailed:
            raise
        except Exception as e:  # one opaque error: never say which check failed
            raise DecryptionFailed() from e
        return envelope.open_envelope(
            sealed,
            key,
            context=envelope.SealContext(subject=subject, purpose=purpose, record=record),
        )

    # -- lifecycle ------------------------------------------------------------------------

    def shred(self, session: Session, subject: str) -> int:
        """Delete every key of ``subject`` (crypto-shredding); returns how many."""
        key_ids = list(
            session.scalars(select(SubjectKeyRow.key_id).where(SubjectKeyRow.subject == subject))
        )
        session.execute(delete(SubjectKeyRow).where(SubjectKeyRow.subject == subject))
        self._keys.drop(key_ids)
        with self._lock:
            for ref in [k for k in self._current if k[0] == subject]:
                del self._current[ref]
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
        with self._lock:
            self._current.clear()
