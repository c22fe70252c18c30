"""Tables of the full node (migration 0044 and later): what it pinned, mirrored and refused."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = [
    "NodeBlobRow",
    "NodeCheckpointRow",
    "NodeCounterRow",
    "NodeForkRow",
    "NodeMemberRow",
    "NodeMessageRow",
    "NodePinRow",
    "NodeRuleSetRow",
    "NodeSpineLeafRow",
    "NodeStatusListRow",
    "NodeTreeRow",
]


class NodePinRow(Base):
    """What the node pinned on first use: ``platform`` (the followed URL), ``origin`` and
    ``log_vkey`` (the log's origin and signed-note key), ``issuer_jwks`` (the issuer's keys)."""

    __tablename__ = "node_pins"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    pinned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NodeMessageRow(Base):
    """A verified message, by stream and position (leaf index, or checkpoint size): storing
    it twice is impossible, so a redelivery is ignored."""

    __tablename__ = "node_messages"

    stream: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NodeTreeRow(Base):
    """The hash of the complete subtree ``(level, idx)`` of the mirrored log (level 0: the
    leaves), so proofs are read, not recomputed."""

    __tablename__ = "node_tree"

    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class NodeCheckpointRow(Base):
    """A mirrored checkpoint (its size is the epoch), verified and consistent with the ones
    before it; the note as received, with its cosignatures."""

    __tablename__ = "node_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NodeForkRow(Base):
    """A signed checkpoint the node refused as inconsistent with its mirror: evidence."""

    __tablename__ = "node_forks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NodeBlobRow(Base):
    """A mirrored blob: the bytes whose CID was checked."""

    __tablename__ = "node_blobs"

    cid: Mapped[str] = mapped_column(String(128), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NodeStatusListRow(Base):
    """A mirrored status list token, its signature and subject checked, by list id."""

    __tablename__ = "node_status_lists"

    list_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    uri: Mapped[str] = mapped_column(String(512))
    token: Mapped[str] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(String(64))
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NodeCounterRow(Base):
    """A counter: messages accepted per stream, dropped per reason (the quotas' input)."""

    __tablename__ = "node_counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class NodeRuleSetRow(Base):
    """A mirrored rule set version: the registry's signed token, verified, and its hash."""

    __tablename__ = "node_rule_sets"

    rule_set: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))
    token: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NodeMemberRow(Base):
    """A membership the node mirrors for scoring (migration 0054): the platform's member
    document of a ``reputation.member`` spine event it stored, checked against that event
    (the DID's SHA-256, KYC flag, credential SHA-256, and the day it was recorded)."""

    __tablename__ = "node_members"

    event_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    did: Mapped[str] = mapped_column(String(128))
    kyc: Mapped[bool] = mapped_column(Boolean)
    issuer: Mapped[str] = mapped_column(String(512))
    vct: Mapped[str] = mapped_column(String(512))
    credential_sha256: Mapped[str] = mapped_column(String(64))
    since: Mapped[date] = mapped_column(Date)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NodeSpineLeafRow(Base):
    """A mirrored leaf whose entry is a spine event the node scores (migration 0053): its
    position and the stream its message comes on (``COMMONS_EVENTS`` or
    ``COMMONS_MEMBERS``), noted once from the platform's entry bundles, each entry checked
    against the mirrored leaf, so a restart reads no entry again (node/scoring_notes.py)."""

    __tablename__ = "node_spine_leaves"

    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    stream: Mapped[str] = mapped_column(String(32))
