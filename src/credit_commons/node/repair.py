"""The operator's way out when a full node lacks a scoring input for good (docs/federation.md,
"Missing inputs"; ``commons node repair``).

The node scores a checkpoint only once every reputation event and membership message below
it is mirrored (node/scoring.py).  A message the mirror dropped (the platform's blob
unreachable as it arrived, a quota) or one the stream no longer holds (a stream purged)
would keep it refusing for ever.  :func:`repair_inputs` fetches each missing leaf's signed
messages from the platform's HTTP API (``GET /v1/internal/log/messages/{index}``, the
node's service token with scope ``log:messages``) and hands the one of the stream the leaf
is noted for to :meth:`Mirror.accept_batch`, which checks it exactly as a message from
NATS — and, the leaf lying below a verified checkpoint, against that mirrored leaf
(``verify_covered``: its entry must be the leaf) — before storing it.  So the repair adds
nothing the log did not sign at that index: the guarantee stands, only the road differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError, ConflictError
from credit_commons.node import store
from credit_commons.node.mirror import Mirror
from credit_commons.node.scoring_inputs import EVENTS_STREAM, MEMBERS_STREAM
from credit_commons.node.scoring_notes import (
    NONE_MISSING,
    MissingInputs,
    missing_inputs,
    note_spine_leaves,
)

__all__ = ["RepairIncomplete", "RepairReport", "repair_inputs"]


class RepairIncomplete(ConflictError):
    """Some missing inputs could not be repaired (each leaf's reason is in the report)."""

    code = "node.repair_incomplete"
    title = "Inputs still missing"


@dataclass(frozen=True)
class RepairReport:
    """What a repair did below the newest mirrored checkpoint (``None``: none yet): the
    leaves whose message it stored, those it could not repair and why, and what is still
    missing afterwards."""

    checkpoint: int | None
    repaired: list[int] = field(default_factory=list)
    unrepaired: dict[int, str] = field(default_factory=dict)
    remaining: MissingInputs = NONE_MISSING

    def to_json(self) -> JsonObject:
        """The report as ``commons node repair --json`` prints it."""
        return {
            "checkpoint": self.checkpoint,
            "repaired": self.repaired,
            "unrepaired": {str(leaf): why for leaf, why in sorted(self.unrepaired.items())},
            "missing": self.remaining.to_json(),
        }


def repair_inputs(mirror: Mirror, token: Callable[[], str], *, limit: int = 1000) -> RepairReport:
    """Fetch, check and store the messages of up to ``limit`` missing leaves per stream
    below the newest mirrored checkpoint (see the module).  A leaf the platform serves no
    such message for, or whose message fails a check (counted as any drop), is reported,
    not stored.  Raises the platform's errors only for the notes' entry bundles."""
    with transaction(mirror.sessions) as session:
        latest = store.latest_checkpoint(session)
    if latest is None:
        return RepairReport(None)
    size = int(latest.size)
    note_spine_leaves(mirror, size)
    with transaction(mirror.sessions) as session:
        missing = missing_inputs(session, size, first=limit)
    repaired: list[int] = []
    unrepaired: dict[int, str] = {}
    for stream in (EVENTS_STREAM, MEMBERS_STREAM):
        for leaf in missing.first[stream]:
            try:
                found = mirror.platform.leaf_messages(leaf, token)
            except CommonsError as e:
                unrepaired[leaf] = f"{e.code}: {e.detail}"[:200]
                continue
            chosen = [(body, subject) for on, subject, body in found if on == stream]
            if not chosen:
                unrepaired[leaf] = f"the platform serves no {stream} message of this leaf"
                continue
            outcomes = mirror.accept_batch(stream, chosen)
            if "stored" in outcomes or "duplicate" in outcomes:
                repaired.append(leaf)
            else:
                unrepaired[leaf] = "the platform's message fails the node's checks (dropped)"
    with transaction(mirror.sessions) as session:
        remaining = missing_inputs(session, size)
    return RepairReport(size, sorted(repaired), unrepaired, remaining)
