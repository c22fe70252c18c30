"""The vault's one state row (``vault_state``): the erasure generation every process
checks its key cache against, the master-key version the last erasure epoch moved every
key to, and the version below which all are destroyed — read, joined into a caller's read,
and moved (see :mod:`credit_commons.vault.service`'s docstring for what each is for)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Subquery, select, update
from sqlalchemy.orm import Session

from credit_commons.core.db import HotQuery
from credit_commons.vault.models import VAULT_STATE_ID, VaultStateRow

__all__ = [
    "move_state",
    "note_destroyed_below",
    "note_kek_version",
    "read_state",
    "state_subquery",
]

_STATE = select(
    VaultStateRow.erasure_generation, VaultStateRow.kek_version, VaultStateRow.destroyed_below
).where(VaultStateRow.id == VAULT_STATE_ID)
_READ_STATE = HotQuery(_STATE, ())
# FOR SHARE on PostgreSQL (SQLite has no row locks: its writers are serialised anyway).
_LOCK_STATE = HotQuery(_STATE.with_for_update(read=True), ())


def state_subquery() -> Subquery:
    """The vault's state row (``erasure_generation``, ``kek_version``, ``destroyed_below``)
    as a subquery of at most one row, for a caller that joins it into a read of its own
    (``ON true``, outer: no row before the state exists) and hands the columns to
    :meth:`Vault.note_state` — one statement fewer on a hot path."""
    return _STATE.subquery("vault_state_now")


def read_state(session: Session, *, lock: bool = False) -> tuple[int, int, int]:
    """The erasure generation, the epoch's master-key version and the version below which
    all are destroyed, from ``vault_state`` (zeros before the row exists); with ``lock``,
    held FOR SHARE on PostgreSQL until the transaction ends."""
    row = (_LOCK_STATE if lock else _READ_STATE).first(session)
    return (int(row[0]), int(row[1]), int(row[2])) if row is not None else (0, 0, 0)


def move_state(session: Session, **values: Any) -> None:
    """Update the one state row with ``values`` (column expressions allowed), inserting it
    first if a schema made without the migration lacks it."""
    changed = session.execute(
        update(VaultStateRow).where(VaultStateRow.id == VAULT_STATE_ID).values(**values)
    )
    if not getattr(changed, "rowcount", 0):
        session.add(
            VaultStateRow(id=VAULT_STATE_ID, erasure_generation=0, kek_version=0, destroyed_below=0)
        )
        session.flush()
        session.execute(
            update(VaultStateRow).where(VaultStateRow.id == VAULT_STATE_ID).values(**values)
        )


def note_kek_version(session: Session, version: int) -> None:
    """Record that every subject key is being moved to master-key ``version`` (an epoch
    close does it before its rewrap; on PostgreSQL the update waits for every transaction
    holding the row FOR SHARE, that is every transaction wrapping a new key right now)."""
    move_state(session, kek_version=version)


def note_destroyed_below(session: Session, version: int) -> None:
    """Record that every master-key version below ``version`` was destroyed in the KMS, so
    other processes reload theirs at their next unit of work (and forget those keys)."""
    move_state(session, destroyed_below=version)
