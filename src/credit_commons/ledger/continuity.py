"""The log never signs two histories: the database's tree must continue what was published.

A database restored from a backup holds the tree as it was when the backup was taken, and
none of the checkpoints signed since.  Signing over it would give a second root for sizes
the log had already published — a fork, evident to every witness and anchor.  So before
the log sequences or signs, the database's tree (size and root) is compared with every
record of what this log published that the database cannot have rolled back:

1. the published-checkpoint file (:mod:`credit_commons.ledger.published`), kept outside
   the database and written before each checkpoint is served;
2. the file anchor journal (``COMMONS_ANCHOR_FILE``), outside the database too;
3. what the database itself knows: its newest checkpoint, the anchors it published, the
   sizes its witnesses cosigned or reported (a witness answers a stale old size with the
   size it is at: tlog-witness §add-checkpoint, 409).

The database is *behind* when a published size exceeds its tree size, and *different* when
its root at a published size is not the published root (recomputed from its stored tiles).
Either way :class:`LogDiverged` names the gap — the published size and root, their source,
the database's size and root, and the acknowledged leaves lost — and nothing is sequenced
or signed until the operator recovers (``commons log replay`` or ``commons log
new-origin``; docs/log.md, "Restores never fork the log").  A log origin frozen by a
declared new origin is refused likewise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from credit_commons.core.encoding import JsonObject
from credit_commons.core.settings import Settings
from credit_commons.events import LogOutboxRow
from credit_commons.formats.tlog_tiles import TileCache
from credit_commons.ledger.anchors import AnchorError
from credit_commons.ledger.anchors.file import last_anchored
from credit_commons.ledger.errors import LogDiverged
from credit_commons.ledger.identity import LogIdentity
from credit_commons.ledger.models import (
    AnchorJobRow,
    CheckpointRow,
    CosignatureRow,
    LogStateRow,
    WitnessProgressRow,
)
from credit_commons.ledger.published import PublishedFile, PublishedRecord
from credit_commons.ledger.rfc6962 import EMPTY_ROOT, Hash, root_from_source
from credit_commons.ledger.tiles import TileHashSource

__all__ = [
    "Claim",
    "Continuity",
    "ContinuityGuard",
    "Gap",
    "LogDiverged",
    "find_gap",
]

log = logging.getLogger("credit_commons.ledger.continuity")

SOURCE_FILE = "published-checkpoint file"
SOURCE_JOURNAL = "anchor journal"
# Anchor jobs that reached their backend (a PENDING or DEAD one may never have).
_ANCHORED = ("PUBLISHED", "VERIFIED", "MISMATCH")


@dataclass(frozen=True)
class Claim:
    """One record of a published tree: its size and, where known, its root."""

    source: str
    size: int
    root: Hash | None = None
    note: str | None = None

    def to_json(self) -> JsonObject:
        """This claim as JSON (roots in base64, as checkpoints write them)."""
        return {
            "source": self.source,
            "size": self.size,
            "root": self.root.b64() if self.root is not None else None,
        }


@dataclass(frozen=True)
class Gap:
    """Why the database may not be signed: ``kind`` is behind, different or frozen."""

    kind: str
    claim: Claim
    database_size: int
    database_root: Hash
    pending_events: int
    successor: str | None = None

    @property
    def lost_leaves(self) -> int | None:
        """Published leaves the database lacks (None when it holds a different history)."""
        if self.kind != "behind":
            return None
        return self.claim.size - self.database_size

    def detail(self) -> str:
        """One sentence naming the gap."""
        claim, root = self.claim, self.claim.root.b64() if self.claim.root else "unknown"
        published = f"published size {claim.size} (root {root}, from the {claim.source})"
        database = f"database size {self.database_size} (root {self.database_root.b64()})"
        if self.kind == "frozen":
            return (
                f"log origin frozen: a new origin {self.successor!r} was declared, so this "
                f"origin is never signed again; {database}"
            )
        if self.kind == "behind":
            return (
                f"the database's log is behind what this log published: {published}, "
                f"{database}; {self.lost_leaves} acknowledged leaves "
                f"[{self.database_size}, {claim.size}) are not in the database"
                + (
                    f" ({self.pending_events} recorded events wait unsequenced)"
                    if self.pending_events
                    else ""
                )
            )
        return (
            f"the database's log differs from what this log published: {published}, "
            f"{database}, whose root at size {claim.size} is another"
        )

    def to_json(self) -> JsonObject:
        """The gap's machine-readable members (also the problem's extra members)."""
        return {
            "kind": self.kind,
            "source": self.claim.source,
            "published_size": self.claim.size,
            "published_root": self.claim.root.b64() if self.claim.root else None,
            "database_size": self.database_size,
            "database_root": self.database_root.b64(),
            "lost_leaves": self.lost_leaves,
            "lost_range": (
                [self.database_size, self.claim.size] if self.kind == "behind" else None
            ),
            "pending_events": self.pending_events,
            "successor": self.successor,
        }

    def error(self) -> LogDiverged:
        """The refusal to raise for this gap."""
        if self.kind == "frozen":
            hint = f"set COMMONS_LOG_ORIGIN={self.successor} (or unset it) and restart"
        elif self.kind == "behind":
            hint = (
                "replay the missing leaves from published tiles (`commons log replay --from "
                "DIR|URL`) or declare a new log origin (`commons log new-origin`); "
                "see docs/log.md"
            )
        else:
            hint = "declare a new log origin (`commons log new-origin`); see docs/log.md"
        return LogDiverged(self.detail(), hint=hint, extra=self.to_json())


@dataclass(frozen=True)
class Continuity:
    """The database's tree beside every record of what the log published."""

    origin: str
    database_size: int
    database_root: Hash
    claims: tuple[Claim, ...]
    gap: Gap | None
    warnings: tuple[str, ...] = ()

    @property
    def published(self) -> Claim | None:
        """The newest claim (largest size), if any."""
        return max(self.claims, key=lambda c: c.size, default=None)

    def check(self) -> None:
        """Return if the database continues the published log; raises :class:`LogDiverged`."""
        if self.gap is not None:
            raise self.gap.error()

    def to_json(self) -> JsonObject:
        """The whole assessment as JSON (``commons log status``)."""
        return {
            "ok": self.gap is None,
            "origin": self.origin,
            "database_size": self.database_size,
            "database_root": self.database_root.b64(),
            "published": [c.to_json() for c in sorted(self.claims, key=lambda c: -c.size)],
            "gap": self.gap.to_json() if self.gap else None,
            "warnings": list(self.warnings),
        }


def find_gap(
    database_size: int,
    database_root: Hash,
    root_at: Any,
    claims: list[Claim],
    pending_events: int = 0,
) -> Gap | None:
    """The first claim the database's tree does not continue, newest first, or None.

    ``root_at(size)`` is the database's root at ``size`` (at most ``database_size``).
    """
    for claim in sorted(claims, key=lambda c: -c.size):
        if claim.size > database_size:
            return Gap("behind", claim, database_size, database_root, pending_events)
        if claim.root is None:
            continue
        ours = database_root if claim.size == database_size else root_at(claim.size)
        if ours != claim.root:
            return Gap("different", claim, database_size, database_root, pending_events)
    return None


class ContinuityGuard:
    """Compares the database's tree with every record of what the log published."""

    def __init__(self, settings: Settings) -> None:
        self.file = PublishedFile(settings.resolved_log_published_file)
        self.journal = settings.resolved_anchor_file

    def record(self, origin: str, size: int, root: Hash, note: str, at: datetime) -> None:
        """Record a checkpoint as published, durably, before it is committed and served
        (see :meth:`PublishedFile.record`, which raises :class:`LogDiverged` too)."""
        self.file.record(origin, size, root, note, at)

    def claims(
        self, session: Session, identity: LogIdentity, record: PublishedRecord
    ) -> tuple[list[Claim], list[str]]:
        """Every record of a published tree of ``identity``'s origin, and warnings about
        sources that could not be read."""
        origin = identity.origin
        claims: list[Claim] = []
        warnings: list[str] = []
        head = record.heads.get(origin)
        if head is not None:
            claims.append(Claim(SOURCE_FILE, head.size, head.root, head.note))
        try:
            anchored = last_anchored(self.journal, origin)
        except AnchorError as e:
            warnings.append(f"{SOURCE_JOURNAL} {self.journal} unreadable: {e.code}")
            anchored = None
        if anchored is not None:
            claims.append(Claim(SOURCE_JOURNAL, anchored.size, Hash(anchored.root)))
        latest = session.execute(
            select(CheckpointRow.size, CheckpointRow.root, CheckpointRow.note)
            .order_by(CheckpointRow.size.desc())
            .limit(1)
        ).first()
        if latest is not None:
            claims.append(Claim("database checkpoint", latest[0], Hash(latest[1]), latest[2]))
        for backend, size, root in session.execute(
            select(AnchorJobRow.backend, AnchorJobRow.size, AnchorJobRow.root)
            .where(AnchorJobRow.origin == origin, AnchorJobRow.status.in_(_ANCHORED))
            .order_by(AnchorJobRow.size.desc())
            .limit(8)
        ):
            claims.append(Claim(f"anchor job ({backend})", size, Hash(root)))
        cosigned = session.execute(
            select(CosignatureRow.witness, CosignatureRow.size, CheckpointRow.root)
            .join(CheckpointRow, CheckpointRow.size == CosignatureRow.size, isouter=True)
            .order_by(CosignatureRow.size.desc())
            .limit(1)
        ).first()
        if cosigned is not None:
            root = Hash(cosigned[2]) if cosigned[2] is not None else None
            claims.append(Claim(f"witness {cosigned[0]} cosignature", cosigned[1], root))
        for witness, size in session.execute(
            select(WitnessProgressRow.witness, WitnessProgressRow.size)
        ):
            claims.append(Claim(f"witness {witness} (its cosigned size)", size))
        return claims, warnings

    def assess(
        self, session: Session, identity: LogIdentity, cache: TileCache | None = None
    ) -> Continuity:
        """Compare the database's tree with every record of what the log published.

        Raises a ``log.published_file_invalid`` or ``file.*`` error when the
        published-checkpoint file cannot be read: without it the log must not sign.
        """
        record = self.file.read()
        state = session.get(LogStateRow, 1)
        size, root = (state.size, Hash(state.root)) if state is not None else (0, EMPTY_ROOT)
        claims, warnings = self.claims(session, identity, record)
        frozen = record.frozen.get(identity.origin)
        if frozen is not None:
            newest = max(claims, key=lambda c: c.size, default=Claim(SOURCE_FILE, 0))
            gap: Gap | None = Gap("frozen", newest, size, root, 0, frozen.successor)
        else:
            source = TileHashSource(session, cache)
            gap = find_gap(size, root, lambda at: root_from_source(at, source), claims)
        if gap is not None:
            # Counted only then: the outbox can be long while the sequencer catches up.
            pending = int(session.scalar(select(func.count()).select_from(LogOutboxRow)) or 0)
            gap = replace(gap, pending_events=pending)
        return Continuity(identity.origin, size, root, tuple(claims), gap, tuple(warnings))
