"""The subscription feed: the same signed messages the publisher sends, read from the
database after a log index, for ``GET /v1/subscribe`` (docs/federation.md).

It needs no NATS: the messages are built from the log's sequenced spine entries, exactly as
:mod:`.publisher` builds them, so it serves on the embedded default (SQLite, no broker).
Checkpoints are not on the feed (they are at ``/v1/log/checkpoint`` and on NATS).

A topic is a NATS-style subject pattern of two tokens over the feed's subjects:
``<prefix>.<name>``, ``<prefix>.*`` or ``<prefix>.>``, where the prefix is ``events``,
``revocations``, ``rules``, ``identity``, ``consent`` or ``credential`` and a bus prefix's
name is one of its verbs; wildcards only as whole tokens; a name token is as
:func:`~.subjects.subject_token` writes it (``[A-Za-z0-9_-]`` and ``=XX`` escapes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.core.errors import CommonsError
from credit_commons.events import EventRow, RecordedEvent, event_document
from credit_commons.federation.subjects import Message, event_messages
from credit_commons.keys import StoredSigner
from credit_commons.ledger import service as ledger
from credit_commons.runtime import Runtime

__all__ = [
    "FeedBatch",
    "Topic",
    "TopicInvalid",
    "leaf_messages",
    "log_size",
    "parse_topic",
    "read_messages",
    "spine_batch",
]

_MAX_TOPIC = 200
_BUS_VERBS = {
    "identity": frozenset({"created", "verified", "updated", "erased"}),
    "consent": frozenset({"requested", "granted", "paused", "resumed", "revoked", "expired"}),
    "credential": frozenset({"issued", "revoked", "suspended", "reinstated"}),
}
_NAMED = frozenset({"events", "revocations", "rules"})
_ESCAPED = re.compile(r"(?:[A-Za-z0-9_-]|=[0-9A-F]{2}|=u[0-9A-F]{4})+|=")


class TopicInvalid(CommonsError):
    """A topic that is not a pattern of the feed's subjects: answered 400."""

    code = "subscribe.topic_invalid"
    title = "Invalid topic"
    status = 400


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic: its prefix and its second token (``*``, ``>`` or a name)."""

    prefix: str
    name: str

    def matches(self, subject: str) -> bool:
        """Whether ``subject`` (two tokens) falls under this topic."""
        prefix, _, name = subject.partition(".")
        return prefix == self.prefix and self.name in ("*", ">", name)

    def __str__(self) -> str:
        return f"{self.prefix}.{self.name}"


def parse_topic(text: str) -> Topic:
    """The topic ``text`` names; raises :class:`TopicInvalid` (never echoing more than the
    grammar) for anything else."""
    if not text or len(text) > _MAX_TOPIC:
        raise TopicInvalid(f"a topic is 1 to {_MAX_TOPIC} characters")
    tokens = text.split(".")
    if len(tokens) != 2:
        raise TopicInvalid("a topic is two tokens: <prefix>.<name|*|>>")
    prefix, name = tokens
    if prefix not in _NAMED and prefix not in _BUS_VERBS:
        known = sorted(_NAMED | set(_BUS_VERBS))
        raise TopicInvalid("unknown subject prefix", extra={"prefixes": known})
    if name in ("*", ">"):
        return Topic(prefix, name)
    if "*" in name or ">" in name:
        raise TopicInvalid("wildcards only as whole tokens")
    verbs = _BUS_VERBS.get(prefix)
    if verbs is not None and name not in verbs:
        raise TopicInvalid(f"unknown {prefix} subject", extra={"names": sorted(verbs)})
    if verbs is None and not _ESCAPED.fullmatch(name):
        raise TopicInvalid("a name token is [A-Za-z0-9_-] with =XX escapes")
    return Topic(prefix, name)


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """Messages of a range of leaves, and the leaf index to read from next."""

    messages: list[Message]
    next_index: int


def spine_batch(
    session: Session, rt: Runtime, start: int, limit: int
) -> tuple[list[Message], int, int]:
    """The signed messages of up to ``limit`` sequenced leaves from ``start``: the messages,
    the number of leaves read and the next leaf index (``start`` when none)."""
    rows = ledger.sequenced_after(session, start, limit)
    if not rows:
        return [], 0, start
    ids = [event_id for _, event_id, _ in rows]
    events = {
        row.id: event_document(RecordedEvent.from_row(row))
        for row in session.scalars(select(EventRow).where(EventRow.id.in_(ids)))
    }
    origin, signer = _signing(session, rt)
    messages: list[Message] = []
    for index, event_id, entry in rows:
        document = events.get(event_id)
        if document is not None:  # an event the log dropped in a recovery has no row
            messages.extend(event_messages(index, entry, document, origin, signer))
    return messages, len(rows), rows[-1][0] + 1


def leaf_messages(session: Session, rt: Runtime, index: int) -> list[Message]:
    """The signed messages the publisher sends for leaf ``index`` (none for a leaf that is
    no spine event's, or not sequenced yet): the same bytes, Ed25519 being deterministic —
    for a full node that lacks one (``GET /v1/internal/log/messages/{index}``)."""
    messages, _, _ = spine_batch(session, rt, index, 1)
    return [m for m in messages if m.position == index]


def read_messages(
    session: Session, rt: Runtime, topics: Sequence[Topic], start: int, leaves: int
) -> FeedBatch:
    """The messages under any of ``topics`` among up to ``leaves`` sequenced leaves from
    ``start``, in leaf order.  A leaf gives at most two messages (a status change is on
    ``revocations.<issuer>`` and ``credential.<verb>``), at most one per topic prefix."""
    messages, _, next_index = spine_batch(session, rt, start, leaves)
    chosen = [m for m in messages if any(t.matches(m.subject) for t in topics)]
    return FeedBatch(chosen, next_index)


def log_size(session: Session) -> int:
    """The next leaf index the log will sequence (where a new subscriber starts)."""
    return ledger.log_state(session)[0]


def _signing(session: Session, rt: Runtime) -> tuple[str, StoredSigner]:
    identity = ledger.log_identity(rt)
    return identity.origin, rt.key_store.signer(session, identity.key_name)
