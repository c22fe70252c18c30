"""The event spine: typed events written in the caller's transaction (DESIGN.md, "The event
spine").  Every domain records its state changes here; the transparency log
(:mod:`credit_commons.ledger`) sequences them into Merkle leaves.

The spine sits just above ``core`` and ``formats`` so that every domain, keys included, can
record events without importing the log.  Its public names are re-exported here; the tables
are :class:`EventRow` and :class:`LogOutboxRow`.
"""

from __future__ import annotations

from credit_commons.events.models import EventRow, LogOutboxRow
from credit_commons.events.spine import (
    OBJECT_KEY_LABEL,
    OBJECT_PATTERN,
    Digest,
    EventDetails,
    EventSpec,
    ObjectDigests,
    PseudonymField,
    RecordedEvent,
    Token,
    event_digest,
    event_document,
    event_types,
    log_entry,
    log_entry_reference,
    record_event,
    record_events,
    unkeyed_object_digest,
)

__all__ = [
    "OBJECT_KEY_LABEL",
    "OBJECT_PATTERN",
    "Digest",
    "EventDetails",
    "EventRow",
    "EventSpec",
    "LogOutboxRow",
    "ObjectDigests",
    "PseudonymField",
    "RecordedEvent",
    "Token",
    "event_digest",
    "event_document",
    "event_types",
    "log_entry",
    "log_entry_reference",
    "record_event",
    "record_events",
    "unkeyed_object_digest",
]
