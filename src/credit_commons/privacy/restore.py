"""After a backup is restored: bring it up to date with the current key material and the
erasures made since (docs/operations.md, "Restoring a backup").

A database backup older than the last erasure epoch holds only subject keys wrapped by
destroyed master-key versions: nothing in it opens on its own.  The *current key material*
is the KMS as it is now and the subject keys as the live database (or a backup newer than
the last epoch) holds them now.  :func:`restore_from`, run on the restored database with
that source:

1. replaces every subject key the source holds by the source's, and deletes every one it
   does not — the subject was erased since the backup (``Vault.restore_keys``);
2. copies the source's erasure epochs, so the epoch history (and the next number) go on;
3. erases again every identity the source has a tombstone for — an erasure made after the
   backup — through the same :func:`~credit_commons.privacy.erasure.erase_subject`;
4. excludes from reputation every DID the source excluded (a DID's own tombstone, or the
   erasure of its identity — which step 3 cannot read again, the subject's keys being gone).

So every subject that still exists opens, and nothing of an erased one does or comes back.
Each step is idempotent: an interrupted run is simply run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from credit_commons.core.db import transaction
from credit_commons.identity import Principal, is_tombstoned
from credit_commons.identity import service as identity_service
from credit_commons.privacy.erasure import erase_subject
from credit_commons.privacy.models import ErasureEpochRow
from credit_commons.reputation import service as reputation_service
from credit_commons.runtime import Runtime

__all__ = ["RestoreCounts", "restore_from"]

_RESTORER = Principal("admin:restore", "admin")


@dataclass(frozen=True, slots=True)
class RestoreCounts:
    """What :func:`restore_from` did: subject keys taken from the source and deleted
    (erased since the backup), erasure epochs copied, erasures applied again."""

    keys_updated: int
    keys_deleted: int
    epochs_copied: int
    erasures_applied: int
    exclusions_copied: int


def _copy_epochs(rt: Runtime, source: sessionmaker[Session]) -> int:
    with transaction(source) as live:
        rows = [
            {c.key: getattr(row, c.key) for c in ErasureEpochRow.__table__.columns}
            for row in live.scalars(select(ErasureEpochRow))
        ]
    with transaction(rt.sessions) as session:
        for values in rows:
            session.merge(ErasureEpochRow(**values))
    return len(rows)


def restore_from(
    rt: Runtime,
    source: sessionmaker[Session],
    *,
    batch: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> RestoreCounts:
    """Bring ``rt``'s (restored) database up to date from ``source``; returns counts.

    Raises :class:`~credit_commons.core.errors.ConflictError` when the source's key
    material is older than the restored database's (the two swapped), and what the KMS and
    the databases raise.
    """
    keys = rt.vault.restore_keys(rt.sessions, source, batch=batch, progress=progress)
    epochs = _copy_epochs(rt, source)
    erased, after = 0, ""
    while True:
        with transaction(rt.read_sessions) as session:
            tokens = identity_service.identity_tokens_after(session, after, batch)
        if not tokens:
            break
        after = tokens[-1]
        with transaction(source) as live:
            gone = [t for t in tokens if is_tombstoned(live, rt, t)]
        for token in gone:
            with transaction(rt.sessions) as session:
                erase_subject(session, rt, _RESTORER, token)
            erased += 1
    return RestoreCounts(
        keys_updated=keys["updated"],
        keys_deleted=keys["deleted"],
        epochs_copied=epochs,
        erasures_applied=erased,
        exclusions_copied=_copy_exclusions(rt, source),
    )


def _copy_exclusions(rt: Runtime, source: sessionmaker[Session]) -> int:
    # Each exclusion the restored copy lacks is recorded again (its own spine event), with
    # the source's reason; one the copy has already is left as it is (idempotent).
    with transaction(source) as live:
        excluded = reputation_service.exclusions(live)
    copied = 0
    with transaction(rt.sessions) as session:
        present = {did for did, _ in reputation_service.exclusions(session)}
        for did, reason in excluded:
            if did not in present:
                reputation_service.exclude_did(session, rt, did, reason)
                copied += 1
    return copied
