"""Tables of the ledger domain: the transparency log (the event spine's tables are in
:mod:`credit_commons.events.models`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = [
    "AnchorJobRow",
    "CheckpointRow",
    "CommitteeConfigRow",
    "CommitteeEquivocationRow",
    "CommitteeMemberNodeRow",
    "CommitteeMemberStateRow",
    "CommitteePartialRow",
    "CommitteeShareRow",
    "CommitteeSignatureRow",
    "CosignatureRow",
    "LogEntryRow",
    "LogStateRow",
    "LogTileRow",
    "RestoreModeRow",
    "WitnessProgressRow",
]


class LogEntryRow(Base):
    """A sequenced log entry: leaf ``leaf_index`` is ``entry``, recorded for ``event_id``.

    ``leaf_key`` — the first 8 bytes of the leaf hash as a signed integer — is indexed so
    proofs can be asked for by leaf hash (RFC 6962 get-proof-by-hash); candidates are then
    confirmed against the full hash of their entry.  An 8-byte integer keeps the index
    small, which keeps sequencing fast.
    """

    __tablename__ = "log_entries"

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_key: Mapped[int] = mapped_column(BigInteger, index=True)


class LogTileRow(Base):
    """A tlog-tiles hash tile: up to 256 concatenated 32-byte hashes at tile ``level``.

    Full tiles (256 hashes) never change; the one partial tile per level grows in place.
    """

    __tablename__ = "log_tiles"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)
    # For full tiles: the internal nodes of heights 4..7 (30 hashes), see ledger/tiles.py.
    upper: Mapped[bytes | None] = mapped_column(LargeBinary)


class LogStateRow(Base):
    """The single row holding the sequenced tree size and root; the sequencer's lock."""

    __tablename__ = "log_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary)


class CheckpointRow(Base):
    """A signed checkpoint (the log's own signature only; cosignatures are separate)."""

    __tablename__ = "log_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CosignatureRow(Base):
    """A witness cosignature line over the checkpoint of ``size``."""

    __tablename__ = "log_cosignatures"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    witness: Mapped[str] = mapped_column(String(255), primary_key=True)
    line: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WitnessProgressRow(Base):
    """The tree size each configured witness last cosigned (where the next request starts)."""

    __tablename__ = "log_witness_progress"

    witness: Mapped[str] = mapped_column(String(255), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)


class AnchorJobRow(Base):
    """One checkpoint root to publish to one anchor backend (the anchoring outbox).

    ``status``: PENDING → PUBLISHED → VERIFIED | MISMATCH, or DEAD after too many attempts.
    """

    __tablename__ = "anchor_jobs"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    backend: Mapped[str] = mapped_column(String(32))
    origin: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    receipt: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("backend", "size", name="uq_anchor_jobs_backend_size"),
        Index("ix_anchor_jobs_status_next", "status", "next_attempt_at"),
    )


class RestoreModeRow(Base):
    """The backup-restore mode of an instance restored by ``commons restore`` (one row, id 1):
    while ``confirmed_at`` is empty the instance serves reads and refuses writes, and the log
    neither sequences nor signs (ledger/restore_mode.py)."""

    __tablename__ = "restore_mode"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    backup_id: Mapped[str] = mapped_column(String(64))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    log_size: Mapped[int] = mapped_column(BigInteger)
    log_root: Mapped[str] = mapped_column(String(64))
    restored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    confirmed_event: Mapped[str | None] = mapped_column(String(40))


class CommitteeConfigRow(Base):
    """A registered checkpoint committee (docs/log.md "Checkpoint committee"): its name,
    threshold, group key and member keys (``members`` × 48 bytes, member ``i`` at offset
    ``48·(i-1)``).  The committee in effect is the newest version whose ``effective_at``
    has passed: a change waits out the notice period (time lock)."""

    __tablename__ = "committee_configs"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(128))
    threshold: Mapped[int] = mapped_column(Integer)
    members: Mapped[int] = mapped_column(Integer)
    group_key: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    member_keys: Mapped[bytes] = mapped_column(LargeBinary)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    effective_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CommitteeMemberNodeRow(Base):
    """The full node a committee version's member index is bound to (migration 0053): its
    partials are accepted only with that node's service token (scope ``partials:write``)
    besides the BLS check, so a share cannot sign from anywhere else."""

    __tablename__ = "committee_member_nodes"

    version: Mapped[int] = mapped_column(
        Integer, ForeignKey("committee_configs.version"), primary_key=True, autoincrement=False
    )
    member: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    node: Mapped[str] = mapped_column(String(64))
    bound_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CommitteePartialRow(Base):
    """A member's verified partial signature over the log's checkpoint of ``size``."""

    __tablename__ = "committee_partials"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    member: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CommitteeEquivocationRow(Base):
    """A member's valid partial signature over another root than the log's at ``size``:
    refused, and reported once as a ``committee.equivocation`` event (``event_id``)."""

    __tablename__ = "committee_equivocations"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    member: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    event_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CommitteeSignatureRow(Base):
    """The committee's group signature line over the checkpoint of ``size``;
    ``published_at``: when the federation publisher's JetStream acknowledged the cosigned
    note (``NULL`` until then, migration 0057).  A flag per row, not a cursor over sizes: a
    partial for an older size can complete it after a newer one was published."""

    __tablename__ = "committee_signatures"
    __table_args__ = (Index("ix_committee_signatures_published", "published_at", "size"),)

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer)
    line: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CommitteeShareRow(Base):
    """A member node's secret key share, wrapped under the master key (purpose
    ``committee-share``, bound to the group key and index), with the committee's public
    description.  ``group`` is the group key in hex."""

    __tablename__ = "committee_shares"

    group: Mapped[str] = mapped_column(String(96), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    member: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    member_keys: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CommitteeMemberStateRow(Base):
    """A member node's own copy of the log it cosigns: the leaves it holds (``size`` and the
    Merkle frontier, the roots of the complete subtrees left to right, concatenated) and
    the last tree head it signed.  Recorded before a partial signature leaves the node."""

    __tablename__ = "committee_member_state"

    group: Mapped[str] = mapped_column(String(96), primary_key=True)
    origin: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    frontier: Mapped[bytes] = mapped_column(LargeBinary)
    signed_size: Mapped[int | None] = mapped_column(BigInteger)
    signed_root: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
