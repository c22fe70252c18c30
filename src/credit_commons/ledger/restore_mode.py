"""The backup-restore mode (seed 002's ``BACKUP_RESTORE_MODE``; docs/operations.md, "Backup
and restore").

``commons restore`` leaves the instance it restored in this mode: it serves reads — the
log's checkpoint, tiles and proofs included, exactly as the backup had them — and refuses
every write with 503 ``service.restore_mode`` until an operator has checked it (``commons log
audit``, ``commons restore --status``) and confirms with ``commons restore --confirm``.
Meanwhile the log neither sequences nor signs, so the checkpoint served is the backup's.
The confirmation is recorded in the log (``log.restore_confirmed``, naming the backup) and
the mode is left at once by every process: each one reads the row at most
:data:`RECHECK_SECONDS` after its last look (:class:`RestoreModeCache`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import ConflictError, UnavailableError
from credit_commons.events import Digest, EventDetails, Token, record_event
from credit_commons.ledger.models import RestoreModeRow

__all__ = [
    "RECHECK_SECONDS",
    "RestoreConfirmed",
    "RestoreHold",
    "RestoreMode",
    "RestoreModeCache",
    "confirm_restore",
    "enter_restore_mode",
    "restore_hold",
]

RECHECK_SECONDS = 1.0
"""How long a process trusts what it last read of the mode."""

_ROW = 1


class RestoreMode(UnavailableError):
    """The instance was restored from a backup and the operator has not confirmed it."""

    code = "service.restore_mode"
    title = "Service in backup-restore mode"
    retry_after = 60


class RestoreConfirmed(EventDetails, event_type="log.restore_confirmed"):
    """An operator confirmed an instance restored from a backup: writes are accepted again."""

    backup_id: Token
    manifest_sha256: Digest
    log_size: int


@dataclass(frozen=True)
class RestoreHold:
    """The restore an instance is held in: the backup, its log size and root (base64)."""

    backup_id: str
    manifest_sha256: str
    log_size: int
    log_root: str
    restored_at: datetime

    def error(self) -> RestoreMode:
        """The refusal of a write while held."""
        return RestoreMode(
            f"this instance was restored from backup {self.backup_id} and refuses writes "
            "until an operator confirms the restore",
            hint="check it (`commons log audit`), then run `commons restore --confirm --yes`",
            extra={"mode": "backup_restore", "backup_id": self.backup_id},
        )

    def to_json(self) -> JsonObject:
        """The hold as ``/readyz`` and ``commons restore --status`` show it."""
        return {
            "mode": "backup_restore",
            "backup_id": self.backup_id,
            "manifest_sha256": self.manifest_sha256,
            "log_size": self.log_size,
            "log_root": self.log_root,
            "restored_at": self.restored_at.isoformat(),
        }


def restore_hold(session: Session) -> RestoreHold | None:
    """The unconfirmed restore this database holds, or None (the usual case)."""
    row = session.get(RestoreModeRow, _ROW)
    if row is None or row.confirmed_at is not None:
        return None
    return RestoreHold(
        backup_id=row.backup_id,
        manifest_sha256=row.manifest_sha256,
        log_size=row.log_size,
        log_root=row.log_root,
        restored_at=row.restored_at,
    )


def enter_restore_mode(
    session: Session,
    *,
    backup_id: str,
    manifest_sha256: str,
    log_size: int,
    log_root: str,
    now: datetime,
) -> None:
    """Hold the (just restored) database in backup-restore mode: replaces any earlier record,
    whether confirmed or not (a backup carries its source's record, if it had one)."""
    row = session.get(RestoreModeRow, _ROW)
    if row is None:
        row = RestoreModeRow(id=_ROW)
        session.add(row)
    row.backup_id, row.manifest_sha256 = backup_id, manifest_sha256
    row.log_size, row.log_root, row.restored_at = log_size, log_root, now
    row.confirmed_at, row.confirmed_event = None, None


def confirm_restore(session: Session, *, actor: str, now: datetime) -> str:
    """Leave backup-restore mode, recording ``log.restore_confirmed``; returns the event's id.

    Raises :class:`ConflictError` when the database is not held (never restored, or already
    confirmed).
    """
    row = session.get(RestoreModeRow, _ROW, with_for_update=True)
    if row is None or row.confirmed_at is not None:
        raise ConflictError("this instance is not in backup-restore mode: nothing to confirm")
    event = record_event(
        session,
        RestoreConfirmed(
            backup_id=row.backup_id,
            manifest_sha256=row.manifest_sha256,
            log_size=row.log_size,
        ),
        actor=actor,
        at=now,
    )
    row.confirmed_at, row.confirmed_event = now, event.id
    return event.id


class RestoreModeCache:
    """What one process last read of the mode, trusted for :data:`RECHECK_SECONDS`: a write
    costs no query but at most one a second, and a confirmation reaches every process within
    that second."""

    def __init__(self, recheck: float = RECHECK_SECONDS) -> None:
        self.recheck = recheck
        self._lock = threading.Lock()
        self._hold: RestoreHold | None = None
        self._expires = float("-inf")

    def fresh(self) -> bool:
        """Whether the last reading is still trusted (no query needed)."""
        return time.monotonic() < self._expires

    def cached(self) -> RestoreHold | None:
        """The last reading (call :meth:`read` when not :meth:`fresh`)."""
        return self._hold

    def read(self, session: Session) -> RestoreHold | None:
        """Read the mode now and trust it for the next :data:`RECHECK_SECONDS`."""
        hold = restore_hold(session)
        with self._lock:
            self._hold, self._expires = hold, time.monotonic() + self.recheck
        return hold
