"""Which mirrored leaves are the spine events a full node scores (node/scoring.py;
docs/federation.md, "Scoring on a node"), noted once and kept (``node_spine_leaves``,
migration 0053).

The node mirrors leaf hashes, not entries, and a leaf's hash does not say its type; the
platform's entry bundles do (``{"v", "id", "type", "at", "digest"}``: the type is public).
:func:`note_spine_leaves` reads the entries of the leaves not noted yet, checks each is the
mirrored leaf, and stores the positions of the ``reputation.event`` leaves (the events
stream) and of the ``reputation.member*`` / ``reputation.excluded`` leaves (the members
stream), with how far it has noted (``node_pins`` ``spine_noted_below``), a tile at a time
in one unit of work each: a restart, or a crash half-way, reads no noted entry again.
:func:`missing_inputs` then says which of those below a size the mirror lacks a message
for, from the database alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy import and_, exists, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject
from credit_commons.formats.tlog_tiles import TILE_WIDTH
from credit_commons.ledger import leaf_hash
from credit_commons.node import store
from credit_commons.node.mirror import Mirror
from credit_commons.node.models import NodeMessageRow, NodePinRow, NodeSpineLeafRow
from credit_commons.node.scoring_inputs import (
    EVENTS_STREAM,
    MEMBERS_STREAM,
    ScoringRefused,
    entry_stream,
)

__all__ = [
    "NONE_MISSING",
    "NOTED_BELOW",
    "MissingInputs",
    "missing_inputs",
    "note_spine_leaves",
    "noted_below",
]

NOTED_BELOW: Final = "spine_noted_below"
"""The ``node_pins`` value: every leaf below it is noted (0 when absent)."""


def noted_below(session: Session) -> int:
    """How far the leaves are noted: every one below this position."""
    row = session.get(NodePinRow, NOTED_BELOW)
    return 0 if row is None else int(row.value)


def _add_notes(session: Session, notes: Mapping[int, str]) -> None:
    # A second writer (the serving node and `commons node repair`) may note the same tile:
    # the same rows, so a conflict changes nothing.
    if not notes:
        return
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    rows = [{"position": p, "stream": s} for p, s in sorted(notes.items())]
    session.execute(insert(NodeSpineLeafRow).values(rows).on_conflict_do_nothing())


def note_spine_leaves(mirror: Mirror, size: int) -> int:
    """Note the spine-event leaves below ``size`` not noted yet (see the module); how many
    entry bundles it read.  Raises :class:`ScoringRefused` (``input``) for an entry that is
    not the mirrored leaf, and the platform's errors (the caller tries again later)."""
    with transaction(mirror.sessions) as session:
        index = noted_below(session)
    bundles = 0
    while index < size:
        tile = index // TILE_WIDTH
        count = min(TILE_WIDTH, size - tile * TILE_WIDTH)
        entries = mirror.platform.entries(tile, count)
        bundles += 1
        batch = {tile * TILE_WIDTH + i: e for i, e in enumerate(entries)}
        batch = {i: e for i, e in batch.items() if i >= index}
        notes: dict[int, str] = {}
        with transaction(mirror.sessions) as session:
            leaves = store.TreeSource(session).leaves(list(batch))
            for i, entry in batch.items():
                if leaves.get(i) != bytes(leaf_hash(entry)):
                    raise ScoringRefused("input", f"the platform's entry {i} is not the leaf")
                stream = entry_stream(entry)
                if stream is not None:
                    notes[i] = stream
            _add_notes(session, notes)
            index = tile * TILE_WIDTH + count
            if noted_below(session) < index:
                store.set_value(session, NOTED_BELOW, str(index), mirror.clock.now())
    return bundles


@dataclass(frozen=True)
class MissingInputs:
    """The noted leaves below a size whose message the mirror lacks: how many per stream
    (``COMMONS_EVENTS``, ``COMMONS_MEMBERS``) and the first of them in leaf order."""

    counts: Mapping[str, int]
    first: Mapping[str, tuple[int, ...]]

    def __bool__(self) -> bool:
        return any(self.counts.values())

    def to_json(self) -> JsonObject:
        """What ``GET /v1/node`` says: per stream, the count and the first leaves."""
        return {
            stream: {"count": self.counts.get(stream, 0), "first": list(self.first[stream])}
            for stream in (EVENTS_STREAM, MEMBERS_STREAM)
        }


NONE_MISSING: Final = MissingInputs(
    {EVENTS_STREAM: 0, MEMBERS_STREAM: 0}, {EVENTS_STREAM: (), MEMBERS_STREAM: ()}
)


def missing_inputs(session: Session, size: int, *, first: int = 20) -> MissingInputs:
    """The noted leaves below ``size`` whose message the mirror lacks (at most ``first``
    of them named per stream), read from the database alone."""
    held = exists().where(
        and_(
            NodeMessageRow.stream == NodeSpineLeafRow.stream,
            NodeMessageRow.position == NodeSpineLeafRow.position,
        )
    )
    lacking = and_(NodeSpineLeafRow.position < size, ~held)
    counts = dict.fromkeys((EVENTS_STREAM, MEMBERS_STREAM), 0)
    for stream, number in session.execute(
        select(NodeSpineLeafRow.stream, func.count())
        .where(lacking)
        .group_by(NodeSpineLeafRow.stream)
    ):
        counts[str(stream)] = int(number)
    named: dict[str, tuple[int, ...]] = {}
    for stream in (EVENTS_STREAM, MEMBERS_STREAM):
        named[stream] = (
            tuple(
                int(p)
                for p in session.scalars(
                    select(NodeSpineLeafRow.position)
                    .where(lacking, NodeSpineLeafRow.stream == stream)
                    .order_by(NodeSpineLeafRow.position)
                    .limit(first)
                )
            )
            if counts[stream]
            else ()
        )
    return MissingInputs(counts, named)
