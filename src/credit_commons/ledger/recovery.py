"""Recovering a log whose database does not continue what it published (after a restore).

Two ways, both CLI commands (docs/log.md, "Restores never fork the log"):

* **replay** (``commons log replay --from DIR|URL``): the leaves the database lacks are read
  from published tiles — a directory in the C2SP tlog-tiles layout, or a tlog-tiles URL — and
  appended exactly as they were published, then the database's root at the published size
  must equal the published root, or nothing is kept.  The log then continues its one
  history; events recorded meanwhile are sequenced after it.
* **a new origin** (``commons log new-origin --origin NAME``): when the leaves cannot be
  recovered, the log is continued under a *declared* new identity.  The old origin is frozen
  first — in the published-checkpoint file, so no database, restored or not, can sign it
  again — and the declaration is itself the first event of the new log.

Neither ever signs a second root for a size of the same origin.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.orm import Session

from credit_commons.core.clock import Clock
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import (
    ConflictError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)
from credit_commons.core.facts import PlatformFactRow, get_fact, record_fact
from credit_commons.events import Digest, EventDetails, EventRow, LogOutboxRow, Token, record_event
from credit_commons.formats.tlog_tiles import TILE_WIDTH
from credit_commons.ledger.checkpoint import verify_checkpoint
from credit_commons.ledger.continuity import SOURCE_FILE, Claim, ContinuityGuard, LogDiverged
from credit_commons.ledger.errors import LogError
from credit_commons.ledger.identity import FACT_FROZEN_PREFIX, FACT_ORIGIN, LogIdentity
from credit_commons.ledger.models import CheckpointRow, LogEntryRow, WitnessProgressRow
from credit_commons.ledger.note import Ed25519Verifier
from credit_commons.ledger.rfc6962 import Hash, root_from_source
from credit_commons.ledger.sequencer import leaf_key, lock_state
from credit_commons.ledger.tiles import TileHashSource, append_leaf_hashes

__all__ = [
    "DirectoryTiles",
    "HttpTiles",
    "LogOriginDeclared",
    "LogReplayed",
    "OriginDeclaration",
    "ReplayReport",
    "TileSource",
    "declare_new_origin",
    "read_entries",
    "replay",
    "tile_path",
]

_entries: Table = LogEntryRow.__table__  # type: ignore[assignment]
# Origins of a declared new log: a short token (it is carried in the declaring event).
_ORIGIN = re.compile(r"[A-Za-z0-9._:#/=-]{1,128}")


class LogReplayed(EventDetails, event_type="log.replayed"):
    """Leaves lost by a database restore were replayed from published tiles."""

    from_size: int
    to_size: int
    events_missing: int


class LogOriginDeclared(EventDetails, event_type="log.origin_declared"):
    """The log continues under a declared new origin; the previous one is frozen."""

    origin: Token
    frozen_origin: Digest  # SHA-256 hex of the frozen origin's text
    published_size: int
    database_size: int


# -- tile sources (C2SP tlog-tiles@v0.1.0) -----------------------------------------------------


def tile_path(index: int, width: int | None = None) -> str:
    """The tlog-tiles path of tile ``index``: 3-digit elements, all but the last prefixed
    with ``x`` (``1234067`` → ``x001/x234/067``), and ``.p/<W>`` for a partial tile."""
    digits = str(index)
    digits = digits.zfill(-(-len(digits) // 3) * 3)
    parts = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    path = "/".join([*(f"x{p}" for p in parts[:-1]), parts[-1]])
    return path if width is None else f"{path}.p/{width}"


class TileSource(Protocol):
    """Where published entry bundles are read from."""

    def entry_bundle(self, path: str, /) -> bytes | None:
        """The bytes of ``tile/entries/<path>``, or None when there is none."""
        ...


class DirectoryTiles:
    """Entry bundles in a directory holding the tlog-tiles layout (``<dir>/tile/entries/…``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry_bundle(self, path: str, /) -> bytes | None:
        """The bundle's bytes, or None if the file does not exist."""
        try:
            return (self.root / "tile" / "entries" / path).read_bytes()
        except FileNotFoundError:
            return None

    def __str__(self) -> str:
        return str(self.root)


class HttpTiles:
    """Entry bundles served at ``<base URL>/tile/entries/…`` (a mirror, another instance)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def entry_bundle(self, path: str, /) -> bytes | None:
        """The bundle's bytes, None on 404; raises :class:`UnavailableError` otherwise."""
        try:
            answer = self.client.get(f"tile/entries/{path}")
        except httpx.HTTPError as e:
            raise UnavailableError("the tile source cannot be reached") from e
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise UnavailableError(f"the tile source answered {answer.status_code}")
        return answer.content

    def __str__(self) -> str:
        return str(self.client.base_url)


def _bundle_entries(data: bytes, count: int, where: str) -> list[bytes]:
    """The first ``count`` entries of an entry bundle (big-endian uint16 length-prefixed)."""
    out: list[bytes] = []
    offset = 0
    while len(out) < count:
        if offset + 2 > len(data):
            raise LogError(f"entry bundle {where} holds fewer than {count} entries")
        (length,) = struct.unpack_from(">H", data, offset)
        offset += 2
        if offset + length > len(data):
            raise LogError(f"entry bundle {where} is truncated")
        out.append(data[offset : offset + length])
        offset += length
    return out


def read_entries(source: TileSource, start: int, end: int) -> list[bytes]:
    """Entries ``[start, end)`` from ``source``'s bundles: for each tile, the partial bundle
    of the width needed, else the full one.  Raises :class:`NotFoundError` naming the first
    bundle the source lacks, :class:`LogError` for a malformed one."""
    entries: list[bytes] = []
    for tile in range(start // TILE_WIDTH, (end - 1) // TILE_WIDTH + 1):
        width = min(TILE_WIDTH, end - tile * TILE_WIDTH)
        paths = [tile_path(tile)] if width == TILE_WIDTH else [tile_path(tile, width)]
        if width < TILE_WIDTH:
            paths.append(tile_path(tile))
        data = None
        for path in paths:
            data = source.entry_bundle(path)
            if data is not None:
                break
        if data is None:
            raise NotFoundError(
                f"the tile source has no entry bundle tile/entries/{paths[0]}",
                hint="give a copy of the published tiles that reaches the published size",
            )
        bundle = _bundle_entries(data, width, paths[0])
        first = max(start, tile * TILE_WIDTH) - tile * TILE_WIDTH
        entries.extend(bundle[first:width])
    return entries


# -- replay ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayReport:
    """What a replay restored: the leaves, and what is known of their events."""

    from_size: int
    to_size: int
    root: Hash
    checkpoint: int | None
    outbox_dropped: int
    events_missing: int
    types: dict[str, int] = field(default_factory=dict)
    first_at: str | None = None
    last_at: str | None = None

    def to_json(self) -> JsonObject:
        """The report as JSON (``commons log replay --json``)."""
        return {
            "replayed": self.to_size - self.from_size,
            "from_size": self.from_size,
            "size": self.to_size,
            "root": self.root.b64(),
            "checkpoint": self.checkpoint,
            "outbox_dropped": self.outbox_dropped,
            "events_missing": self.events_missing,
            "types": self.types,
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


def _event_ids(entries: Iterable[bytes]) -> list[tuple[str, str, str]]:
    """(id, type, at) of each entry (an event reference); raises :class:`LogError`."""
    out = []
    for index, entry in enumerate(entries):
        try:
            value = json.loads(entry)
            out.append((str(value["id"]), str(value["type"]), str(value["at"])))
        except (ValueError, KeyError, TypeError) as e:
            raise LogError(f"replayed entry {index} is not an event reference") from e
    return out


def replay(
    session: Session,
    guard: ContinuityGuard,
    identity: LogIdentity,
    source: TileSource,
    *,
    clock: Clock,
    actor: str,
) -> ReplayReport:
    """Append the published leaves the database lacks, from ``source``, in the caller's
    transaction (nothing is kept unless every step passes).

    1. The database must be *behind* a published checkpoint whose root is known (raises
       :class:`ConflictError` when nothing is missing, :class:`LogDiverged` when it holds
       another history or its origin is frozen: only a new origin recovers those).
    2. Read leaves ``[database size, published size)`` from the source's entry bundles.
    3. Append them as log entries and hash tiles; events recorded meanwhile whose ids they
       carry leave the outbox (they were sequenced before the restore).
    4. The root at the published size must be the published root (raises
       :class:`LogDiverged`, and the transaction rolls back).
    5. The published checkpoint, when its signed note is known (the published-checkpoint
       file), is stored after its signature is verified under the log's key.
    6. Every record of what was published must now be continued; a ``log.replayed`` event
       is recorded.
    """
    # 1.
    state = lock_state(session)
    target = _replay_target(session, guard, identity)
    start = state.size
    # 2.
    entries = read_entries(source, start, target.size)
    refs = _event_ids(entries)
    # 3.
    ids = [ref[0] for ref in refs]
    dropped, known = _append_replayed(session, start, entries, ids)
    # 4.
    root = _check_replayed_root(session, target)
    state.size, state.root = target.size, bytes(root)
    # 5.
    checkpoint = _store_published_checkpoint(session, identity, target, root, clock)
    session.flush()
    # 6.
    guard.assess(session, identity).check()
    record_event(
        session,
        LogReplayed(from_size=start, to_size=target.size, events_missing=len(ids) - known),
        actor=actor,
        at=clock.now(),
    )
    types: dict[str, int] = {}
    for _, kind, _ in refs:
        types[kind] = types.get(kind, 0) + 1
    return ReplayReport(
        from_size=start,
        to_size=target.size,
        root=root,
        checkpoint=checkpoint,
        outbox_dropped=dropped,
        events_missing=len(ids) - known,
        types=types,
        first_at=min((r[2] for r in refs), default=None),
        last_at=max((r[2] for r in refs), default=None),
    )


def _replay_target(session: Session, guard: ContinuityGuard, identity: LogIdentity) -> Claim:
    """Step 1 of :func:`replay`: the newest published claim with a known root, which the
    database (behind it) must reach."""
    continuity = guard.assess(session, identity)
    gap = continuity.gap
    if gap is None:
        raise ConflictError("the database continues what this log published: nothing to replay")
    if gap.kind != "behind":
        raise gap.error()
    target = max(
        (c for c in continuity.claims if c.root is not None), key=lambda c: c.size, default=None
    )
    if target is None or target.size < gap.claim.size:
        raise ValidationError(
            f"the newest published size {gap.claim.size} ({gap.claim.source}) has no known "
            "root to check a replay against",
            hint="declare a new origin instead (`commons log new-origin`)",
        )
    return target


def _append_replayed(
    session: Session, start: int, entries: list[bytes], ids: list[str]
) -> tuple[int, int]:
    """Step 3 of :func:`replay`: store ``entries`` as leaves ``start…`` with their tiles and
    drop their events from the outbox; (outbox entries dropped, events the database holds)."""
    hashes = [hashlib.sha256(b"\x00" + e).digest() for e in entries]
    session.execute(
        insert(_entries),
        [
            {"leaf_index": start + i, "event_id": ids[i], "entry": e, "leaf_key": leaf_key(h)}
            for i, (e, h) in enumerate(zip(entries, hashes, strict=True))
        ],
    )
    dropped = 0
    for i in range(0, len(ids), 1000):
        chunk = ids[i : i + 1000]
        result = session.execute(delete(LogOutboxRow).where(LogOutboxRow.event_id.in_(chunk)))
        dropped += int(result.rowcount or 0)  # type: ignore[attr-defined]
    known = 0
    for i in range(0, len(ids), 1000):
        chunk = ids[i : i + 1000]
        known += int(session.scalar(select(func.count()).where(EventRow.id.in_(chunk))) or 0)
    append_leaf_hashes(session, start, hashes)
    return dropped, known


def _check_replayed_root(session: Session, target: Claim) -> Hash:
    """Step 4 of :func:`replay`: the database's root at the published size, which must be the
    published root (raises :class:`LogDiverged`)."""
    assert target.root is not None
    root = root_from_source(target.size, TileHashSource(session))
    if root != target.root:
        raise LogDiverged(
            f"the replayed leaves give root {root.b64()} at size {target.size}, not the "
            f"published {target.root.b64()} ({target.source}): the tiles are of another log",
            extra={"published_size": target.size},
        )
    return root


def _store_published_checkpoint(
    session: Session, identity: LogIdentity, target: Claim, root: Hash, clock: Clock
) -> int | None:
    """Step 5 of :func:`replay`: store the published checkpoint when its signed note is known
    and not stored yet, after verifying it under the log's key; its size, or None."""
    note = target.note if target.source == SOURCE_FILE else None
    if note is None or session.get(CheckpointRow, target.size) is not None:
        return None
    opened = verify_checkpoint(
        note, Ed25519Verifier.from_vkey(identity.vkey), origin=identity.origin
    )
    if opened.size != target.size or opened.root_hash != root:
        raise LogDiverged("the published checkpoint does not state the published tree")
    session.add(
        CheckpointRow(size=target.size, root=bytes(root), note=note, created_at=clock.now())
    )
    return target.size


# -- a declared new origin ---------------------------------------------------------------------


@dataclass(frozen=True)
class OriginDeclaration:
    """A new origin declared: which origin was frozen, and what was lost."""

    origin: str
    frozen_origin: str
    published_size: int
    database_size: int
    lost_leaves: int | None

    def to_json(self) -> JsonObject:
        """The declaration as JSON (``commons log new-origin --json``)."""
        return {
            "origin": self.origin,
            "frozen_origin": self.frozen_origin,
            "published_size": self.published_size,
            "database_size": self.database_size,
            "lost_leaves": self.lost_leaves,
        }


def declare_new_origin(
    session: Session,
    guard: ContinuityGuard,
    identity: LogIdentity,
    origin: str,
    *,
    clock: Clock,
    actor: str,
) -> OriginDeclaration:
    """Continue the log under ``origin``, freezing the current origin, in the caller's
    transaction.

    1. Only a log that does not continue what it published is re-declared (raises
       :class:`ConflictError` otherwise: nothing was lost).
    2. ``origin`` must be a new short token: never used by this log (raises
       :class:`ValidationError`).
    3. The current origin is frozen in the published-checkpoint file (durable before the
       database changes): no database can sign it again.
    4. The platform fact ``log.origin`` becomes ``origin``; the frozen origin is recorded as
       ``log.origin.frozen.<n>`` (auditors verify its checkpoints under its own key name).
       Witness progress, which belonged to the old origin, is forgotten.
    5. A ``log.origin_declared`` event is recorded: the new log's first new leaf.
    """
    # 1.
    lock_state(session)
    continuity = guard.assess(session, identity)
    gap = continuity.gap
    if gap is None:
        raise ConflictError(
            "the database continues what this log published: there is nothing to recover",
            hint="a log's origin is fixed when it is created (docs/log.md)",
        )
    # 2.
    record = guard.file.read()
    used = {identity.origin, *identity.frozen_origins, *record.heads, *record.frozen}
    if not _ORIGIN.fullmatch(origin) or origin in used:
        raise ValidationError(
            "the new origin must be a name this log never used, of at most 128 characters "
            "from A-Z a-z 0-9 . _ : # / = -",
            extra={"field": "origin"},
        )
    now = clock.now()
    # 3.
    guard.file.freeze(identity.origin, origin, f"log.diverged: {gap.kind}", now)
    # 4.
    frozen = session.scalar(
        select(func.count()).where(PlatformFactRow.key.like(f"{FACT_FROZEN_PREFIX}%"))
    )
    record_fact(session, f"{FACT_FROZEN_PREFIX}{int(frozen or 0) + 1}", identity.origin, now)
    row = session.get(PlatformFactRow, FACT_ORIGIN)
    if row is None or get_fact(session, FACT_ORIGIN) != identity.origin:
        raise ConflictError("the log's recorded origin changed meanwhile; run the command again")
    row.value, row.recorded_at = origin, now
    session.execute(delete(WitnessProgressRow))
    # 5.
    record_event(
        session,
        LogOriginDeclared(
            origin=origin,
            frozen_origin=hashlib.sha256(identity.origin.encode()).hexdigest(),
            published_size=gap.claim.size,
            database_size=gap.database_size,
        ),
        actor=actor,
        at=now,
    )
    return OriginDeclaration(
        origin, identity.origin, gap.claim.size, gap.database_size, gap.lost_leaves
    )
