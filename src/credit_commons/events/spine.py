"""The event spine: typed events written in the caller's transaction.

Every state change records an event ``{type, at, actor, subject, object, details}``:
``actor`` and ``subject`` are pseudonyms (``p1:…``), ``object`` is a keyed digest of what
the event is about (``o1:…``, :class:`ObjectDigests`), and ``details`` is an instance of the
typed details model registered for the event type.

Object digests are keyed (issue 13 item 3): an unkeyed SHA-256 of ``{"id", "kind"}`` — what
they were before — let anyone holding an identity token find every event about that
subject, after an erasure too.  ``o<v>:`` + base64url(HMAC-SHA-256(K_v, canonical
``{"id", "kind"}``)), with ``K_v`` a key the KMS derives from its pepper (so only the
platform computes them), versioned like pseudonyms.  Events recorded before carry the old
64-hex form, which :func:`unkeyed_object_digest` still computes for look-ups; events are
never rewritten, so their receipts keep verifying.

Nothing personal can slip into ``details``: a details model may only declare fields of safe
types — booleans, integers, datetimes, enums, literals, pseudonyms, digests and
:data:`Token` strings (at most 128 characters from ``[A-Za-z0-9._:#/+=-]``, no spaces) —
and this is checked when the class is defined, not when an event is written.  Free-form
strings and dicts cannot be declared at all.

The transparency log turns these rows into Merkle leaves (docs/log.md).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring
from typing import Annotated, Any, ClassVar, Literal, Union, cast

from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase

from credit_commons.core.clock import utc
from credit_commons.core.db import HotQuery, HotStatement
from credit_commons.core.encoding import JsonObject, b64url_encode, canonical_json, sha256_hex
from credit_commons.core.errors import ValidationError
from credit_commons.core.ids import new_id
from credit_commons.core.pseudonym import PSEUDONYM_PATTERN
from credit_commons.events.models import EventRow, LogOutboxRow

__all__ = [
    "OBJECT_KEY_LABEL",
    "OBJECT_PATTERN",
    "Digest",
    "EventDetails",
    "EventRows",
    "EventSpec",
    "ObjectDigests",
    "PseudonymField",
    "RecordedEvent",
    "Token",
    "event_digest",
    "event_document",
    "event_rows",
    "event_types",
    "log_entry",
    "log_entry_reference",
    "record_event",
    "record_events",
    "recorded_with",
    "unkeyed_object_digest",
    "write_event_rows",
]


class _Safe:
    """Marker put in ``Annotated`` metadata of the string types allowed in event details."""


_SAFE = _Safe()

Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:#/+=-]{1,128}$"), _SAFE]
"""A short machine token: a key name, a credential type, a status, an id."""

Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$"), _SAFE]
"""A SHA-256 hex digest."""

PseudonymField = Annotated[str, StringConstraints(pattern=PSEUDONYM_PATTERN), _SAFE]
"""A pseudonym (``p1:…``)."""

_EVENT_TYPE = re.compile(r"[a-z][a-z_]*\.[a-z][a-z_.]*")
_REGISTRY: dict[str, type[EventDetails]] = {}


def _is_safe(annotation: Any, metadata: list[Any]) -> bool:
    if annotation in (bool, int, datetime, type(None)):
        return True
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return True
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _is_safe(args[0], [*metadata, *args[1:]])
    if annotation is str:
        return any(isinstance(m, _Safe) for m in metadata)
    if origin is Literal:
        return all(isinstance(a, str | int | bool) for a in args)
    if origin in (Union, types.UnionType):
        return all(_is_safe(a, metadata) for a in args)
    if origin is tuple:
        items = [a for a in args if a is not Ellipsis]
        return all(_is_safe(a, []) for a in items)
    return False


class EventDetails(BaseModel):
    """Base of every event's typed details.  Subclass with ``event_type="domain.verb"``.

    Raises :class:`TypeError` at class definition for a field of an unsafe type, a missing
    or malformed event type, or an event type registered twice.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    event_type: ClassVar[str]

    def __init_subclass__(cls, event_type: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if event_type is None:
            raise TypeError(f"{cls.__name__} must declare event_type=...")
        if not isinstance(event_type, str) or not _valid_type(event_type):
            raise TypeError(f"{cls.__name__}: malformed event type {event_type!r}")
        if event_type in _REGISTRY:
            raise TypeError(f"event type {event_type!r} is already registered")
        cls.event_type = event_type
        _REGISTRY[event_type] = cls

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name, field in cls.model_fields.items():
            if not _is_safe(field.annotation, list(field.metadata)):
                _REGISTRY.pop(cls.event_type, None)
                raise TypeError(
                    f"{cls.__name__}.{name}: event details may only hold booleans, integers, "
                    "datetimes, enums, literals, Token, Digest or PseudonymField"
                )


def _valid_type(value: str) -> bool:
    return bool(_EVENT_TYPE.fullmatch(value)) and len(value) <= 64


def event_types() -> dict[str, type[EventDetails]]:
    """Every registered event type and its details model."""
    return dict(_REGISTRY)


OBJECT_PATTERN = r"^o[1-9][0-9]*:[A-Za-z0-9_-]{43}$"
"""A keyed object digest: ``o<version>:`` and 43 base64url characters (32 bytes)."""

OBJECT_KEY_LABEL = "event-object-key"
"""The KMS HMAC label under which the object-digest key of each version is derived."""


class ObjectDigests:
    """Keyed ``object`` digests of events (see the module): ``o<v>:`` + base64url of
    HMAC-SHA-256 (RFC 2104) under the version's key, of the canonical (RFC 8785)
    ``{"id", "kind"}`` reference.

    Build it with the key the KMS derives (:meth:`key_message` under
    :data:`OBJECT_KEY_LABEL`).  Raises :class:`ValidationError` for a key shorter than 32
    bytes or a version below 1.
    """

    def __init__(self, key: bytes, version: int = 1) -> None:
        if not isinstance(key, bytes) or len(key) < 32:
            raise ValidationError("an object-digest key is at least 32 bytes")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValidationError("an object-digest version is >= 1")
        self._key, self.version = key, version
        self._prefix = f"o{version}:"

    def __repr__(self) -> str:  # never show the key
        return f"ObjectDigests(version={self.version})"

    @staticmethod
    def key_message(version: int) -> bytes:
        """What the KMS MACs (label :data:`OBJECT_KEY_LABEL`) to derive version ``version``'s
        key: the version number in ASCII."""
        return str(version).encode("ascii")

    def digest(self, kind: str, identifier: str) -> str:
        """The ``object`` of an event about ``identifier`` of ``kind`` (``"consent"``, …)."""
        message = canonical_json({"id": identifier, "kind": kind})
        mac = hmac.new(self._key, message, hashlib.sha256).digest()
        return self._prefix + b64url_encode(mac)

    def candidates(self, kind: str, identifier: str) -> tuple[str, str]:
        """Every ``object`` an event about it may carry: the keyed digest, and the unkeyed
        one of events recorded before digests were keyed (for look-ups)."""
        return self.digest(kind, identifier), unkeyed_object_digest(kind, identifier)


def unkeyed_object_digest(kind: str, identifier: str) -> str:
    """The ``object`` events carried before digests were keyed: SHA-256 hex of the canonical
    ``{"id", "kind"}`` reference.  Only for finding those older events; never written."""
    return sha256_hex(canonical_json({"id": identifier, "kind": kind}))


class RecordedEvent(BaseModel):
    """An event as recorded, read back from the spine."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    at: datetime
    actor: str
    subject: str | None
    object: str | None
    details: JsonObject  # the details model's JSON form, as stored

    @classmethod
    def from_row(cls, row: EventRow) -> RecordedEvent:
        """Build from a database row."""
        return cls(
            id=row.id,
            type=row.type,
            at=utc(row.at),
            actor=row.actor,
            subject=row.subject,
            object=row.object,
            details=json.loads(row.details),
        )


_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)
_EVENTS = cast(Table, EventRow.__table__)
_OUTBOX = cast(Table, LogOutboxRow.__table__)
_EVENT_COLUMNS = ("id", "type", "at", "actor", "subject", "object", "details")
"""The ``events`` columns of an event's row (:attr:`EventRows.events`), in order."""
_INSERT_EVENTS = HotStatement(insert(_EVENTS), _EVENT_COLUMNS)
_INSERT_OUTBOX = HotStatement(insert(_OUTBOX), ("event_id", "entry"))
_OBJECT = re.compile(OBJECT_PATTERN)


@dataclass(frozen=True)
class EventSpec:
    """One event to record with :func:`record_events` (the arguments of :func:`record_event`)."""

    details: EventDetails
    actor: str
    at: datetime
    subject: str | None = None
    object: str | None = None


def record_event(
    session: Session,
    details: EventDetails,
    *,
    actor: str,
    at: datetime,
    subject: str | None = None,
    object: str | None = None,
) -> RecordedEvent:
    """Write one event in the caller's transaction (the caller commits).

    Raises :class:`ValidationError` if ``actor``/``subject`` are not pseudonyms, ``object`` is
    not a keyed object digest (:class:`ObjectDigests`), or ``details`` is not a registered
    details model.
    """
    spec = EventSpec(details, actor=actor, at=at, subject=subject, object=object)
    return record_events(session, [spec])[0]


def record_events(session: Session, specs: Sequence[EventSpec]) -> list[RecordedEvent]:
    """Write several events in the caller's transaction, in order, with two multi-row
    inserts (the events and their log entries); every event is checked first, so one bad
    event writes none.  Raises :class:`ValidationError` as :func:`record_event` does.
    """
    return write_event_rows(session, event_rows(specs))


def write_event_rows(session: Session, rows: EventRows) -> list[RecordedEvent]:
    """Write events :func:`event_rows` made ready (checked, their log entries fixed) in the
    caller's transaction, with two multi-row inserts; returns them as recorded.

    For a caller that holds a lock while it writes (a SQLite writer): the events are
    checked and their log entries built before it begins, and only the inserts run inside.
    Raises the database's errors (an event id written twice: an integrity error).
    """
    if rows.events:
        # Precompiled inserts on the session's DBAPI connection (one executemany each): the
        # rows are plain values, so SQLAlchemy's per-call layers would only cost time (a
        # single event — an access, a consent change — spent most of its time there).
        _INSERT_EVENTS.executemany(session, rows.events)
        _INSERT_OUTBOX.executemany(session, rows.entries)
    return rows.recorded


def recorded_with(changed: UpdateBase) -> HotQuery:
    """PostgreSQL only: ``changed`` (a data-modifying statement with ``RETURNING``) and one
    event with its log entry, written by one statement (data-modifying CTEs, PostgreSQL 15
    §7.8.4): the event row and its entry are inserted only from a row ``changed`` returned,
    so all three are written or none, as one implicit transaction.

    Its parameters are ``changed``'s, the event's row as ``event_<column>`` (the values of
    one of :func:`event_rows`' ``events``) and ``entry`` (its ``entries``' ``entry``).  It
    returns the log entry's event id, or no row when ``changed`` returned none.
    """
    done = changed.cte("changed")
    values = [bindparam(f"event_{c}", type_=_EVENTS.c[c].type) for c in _EVENT_COLUMNS]
    recorded = (
        insert(_EVENTS)
        .from_select(_EVENT_COLUMNS, select(*values).select_from(done))
        .returning(_EVENTS.c.id)
        .cte("recorded")
    )
    entry = bindparam("entry", type_=_OUTBOX.c.entry.type)
    entered = (
        insert(_OUTBOX)
        .from_select(["event_id", "entry"], select(recorded.c.id, entry))
        .returning(_OUTBOX.c.event_id)
        .cte("entered")
    )
    names = (*changed.compile().binds, *(f"event_{c}" for c in _EVENT_COLUMNS), "entry")
    return HotQuery(select(entered.c.event_id), names, dialect="postgresql")


@dataclass(frozen=True, slots=True)
class EventRows:
    """Events checked and made ready to write (:func:`event_rows`): the events as recorded,
    and the values of their ``events`` rows and ``log_outbox`` entries, in order."""

    recorded: list[RecordedEvent]
    events: list[dict[str, Any]]
    entries: list[dict[str, Any]]


def event_rows(specs: Sequence[EventSpec]) -> EventRows:
    """The rows :func:`record_events` writes for ``specs``, for a caller that writes them
    in a statement of its own (an ``events`` row's values are named as its columns, an
    entry's ``event_id`` and ``entry``).  Every event is checked first; raises
    :class:`ValidationError` as :func:`record_event` does."""
    registered = set(_REGISTRY.values())
    for spec in specs:
        if type(spec.details) not in registered:
            raise ValidationError("event details must be a registered EventDetails model")
        if not _PSEUDONYM.fullmatch(spec.actor):
            raise ValidationError("event actor must be a pseudonym")
        if spec.subject is not None and not _PSEUDONYM.fullmatch(spec.subject):
            raise ValidationError("event subject must be a pseudonym")
        if spec.object is not None and not _OBJECT.fullmatch(spec.object):
            raise ValidationError("event object must be a keyed object digest (o1:…)")
    recorded: list[RecordedEvent] = []
    rows: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    stamps: dict[datetime, str] = {}  # a batch's events usually share one time
    dumped: dict[tuple[Any, ...], tuple[JsonObject, str]] = {}  # and often one details
    for spec in specs:
        details, details_json = _dump(spec.details, dumped)
        at = utc(spec.at)
        stamp = stamps.get(at)
        if stamp is None:
            stamp = stamps[at] = _timestamp(at)
        # Every field was checked above or is made here: no second validation.
        event = RecordedEvent.model_construct(
            id=new_id("evt"),
            type=spec.details.event_type,
            at=at,
            actor=spec.actor,
            subject=spec.subject,
            object=spec.object,
            details=details,
        )
        recorded.append(event)
        rows.append(
            {
                "id": event.id,
                "type": event.type,
                "at": at,
                "actor": event.actor,
                "subject": event.subject,
                "object": event.object,
                "details": details_json,
            }
        )
        # The log entry is fixed now, in the same transaction: the sequencer only numbers it.
        entries.append({"event_id": event.id, "entry": _log_entry(event, stamp, details_json)})
    return EventRows(recorded, rows, entries)


_PLAIN = (str, int, bool, type(None))


def _dump(
    details: EventDetails, seen: dict[tuple[Any, ...], tuple[JsonObject, str]]
) -> tuple[JsonObject, str]:
    # The JSON form of ``details`` and its canonical text.  Details whose fields are all
    # plain values (a bulk issuance's thousand identical ``credential.issued`` details) are
    # dumped once per batch; each event still gets its own dict.
    fields = details.__dict__
    if all(type(v) in _PLAIN for v in fields.values()):
        # With each value's type: True == 1 (and hashes alike) but dumps as true.
        key = (type(details), *((k, type(v), v) for k, v in fields.items()))
        hit = seen.get(key)
        if hit is None:
            dumped = details.model_dump(mode="json")
            hit = seen[key] = (dumped, canonical_json(dumped).decode("utf-8"))
        return dict(hit[0]), hit[1]
    dumped = details.model_dump(mode="json")
    return dumped, canonical_json(dumped).decode("utf-8")


def _timestamp(at: datetime) -> str:
    return utc(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_document(event: RecordedEvent) -> JsonObject:
    """The full event as JSON: what a receipt carries and what the log entry's digest covers
    (a document of the event format, docs/architecture.md: its ``details`` members are
    each event type's own)."""
    return {
        "id": event.id,
        "type": event.type,
        "at": _timestamp(event.at),
        "actor": event.actor,
        "subject": event.subject,
        "object": event.object,
        "details": event.details,
    }


def event_digest(document: JsonObject) -> str:
    """SHA-256 hex of the RFC 8785 form of an event document."""
    return sha256_hex(canonical_json(document))


def log_entry(event: RecordedEvent) -> bytes:
    """The log entry (Merkle leaf data) of an event: its canonical JSON *reference*.

    ``{"at", "digest", "id", "type", "v": 1}`` — the type and time are public, everything
    else (pseudonyms, object, details) is behind the digest of :func:`event_document`, so
    the public log reveals nothing about who did what to whom (docs/log.md).
    """
    return _log_entry(event, _timestamp(event.at), canonical_json(event.details).decode("utf-8"))


def log_entry_reference(event: RecordedEvent) -> bytes:
    """:func:`log_entry` built from whole documents by :func:`canonical_json` (what tests
    compare the composed form with)."""
    reference = {
        "v": 1,
        "id": event.id,
        "type": event.type,
        "at": _timestamp(event.at),
        "digest": event_digest(event_document(event)),
    }
    return canonical_json(reference)


_string = encode_basestring  # what canonical_json's fast path writes strings with


def _nullable(value: str | None) -> str:
    return "null" if value is None else _string(value)


def _log_entry(event: RecordedEvent, stamp: str, details_json: str) -> bytes:
    # The RFC 8785 forms of the event document and of the reference, composed from their
    # members instead of re-encoding whole documents: members in code-point order of their
    # (ASCII) names, strings escaped by the encoder canonical_json itself uses, and the
    # details already in canonical form (RFC 8785 is compositional).  Every event's strings
    # are ASCII (ids, types, pseudonyms, digests, timestamps).  A property test holds this to
    # log_entry_reference.
    document = (
        f'{{"actor":{_string(event.actor)},"at":{_string(stamp)},"details":{details_json},'
        f'"id":{_string(event.id)},"object":{_nullable(event.object)},'
        f'"subject":{_nullable(event.subject)},"type":{_string(event.type)}}}'
    ).encode()
    return (
        f'{{"at":{_string(stamp)},"digest":"{sha256_hex(document)}",'
        f'"id":{_string(event.id)},"type":{_string(event.type)},"v":1}}'
    ).encode()
