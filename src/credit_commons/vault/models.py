"""Tables of the vault: subject keys wrapped by the KMS master key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["VAULT_STATE_ID", "SubjectKeyRow", "VaultStateRow"]


class SubjectKeyRow(Base):
    """One version of the data key of a (subject, purpose), wrapped by the KMS master key.

    ``key_id`` is referenced from every envelope sealed under it.  Deleting the rows of a
    subject makes every envelope of that subject unopenable (crypto-shredding).
    """

    __tablename__ = "vault_subject_keys"

    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    kek_id: Mapped[str] = mapped_column(String(64))
    kek_version: Mapped[int] = mapped_column(Integer)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("subject", "purpose", "version", name="uq_vault_subject_keys_spv"),
        Index("ix_vault_subject_keys_kek_version", "kek_version", "key_id"),
    )


VAULT_STATE_ID = 1
"""The id of the one ``vault_state`` row."""


class VaultStateRow(Base):
    """What every process running the vault checks before trusting what it cached (one row).

    ``erasure_generation`` grows with every erasure (crypto-shredding): a process that sees
    it change drops its cached subject keys at once, instead of serving an erased subject's
    key until a TTL runs out.  ``kek_version`` is the master-key version an erasure epoch
    moved every subject key to: a process whose KMS is older reloads it before it wraps, so
    nothing new is wrapped under a version the epoch is about to destroy.
    ``destroyed_below``: every version below it was destroyed in the KMS; a process that
    still holds one (a local key file loaded before) reloads, and forgets it.
    """

    __tablename__ = "vault_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    erasure_generation: Mapped[int] = mapped_column(Integer)
    kek_version: Mapped[int] = mapped_column(Integer)
    destroyed_below: Mapped[int] = mapped_column(Integer)
