"""Subjects, streams and message bodies of the federation (docs/federation.md, seed 004's
topics and seed 003 §6's event bus).

Every message is a compact JWS (``typ`` :data:`MESSAGE_TYP`) by the log's key, so a follower
that pinned the log's verifier key (the one its checkpoints are signed with) verifies every
message with it.  A spine event's message carries its log entry (the public leaf) and its
event document — pseudonyms, keyed object digests and the typed details the spine already
restricts to tokens, digests, numbers and dates (``events/spine.py``): nothing personal can
be in it, because nothing personal can be in the spine.  The follower checks
``sha256(JCS(event)) == entry.digest`` and the entry's inclusion in a checkpoint.

Subjects:

- ``events.<ctx>`` — reputation events (vouch, report) by CID, per context;
- ``revocations.<issuer>`` — status changes of this platform's credentials (revoke,
  suspend, reinstate; the issuer is the platform, named by its log origin);
- ``rules.<id>`` — reputation rule sets registered;
- ``checkpoints.<origin>`` — the log's signed checkpoints (C2SP signed notes);
- ``members.{recorded,revoked,reinstated,excluded}`` — reputation memberships recorded,
  revoked or suspended, reinstated, and DIDs excluded from scoring: what a follower needs
  beside ``events.*`` to score as the platform does;
- ``identity.{created,verified,updated,erased}``, ``consent.{requested,granted,paused,
  resumed,revoked,expired}``, ``credential.{issued,revoked,suspended,reinstated}`` — the event
  bus.

A token that is not ``[A-Za-z0-9_-]`` (a ``.`` would split a NATS subject) is escaped with
``=XX`` per character, so the mapping is reversible and never ambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from credit_commons.core.encoding import JsonObject
from credit_commons.formats.jws import JwsSigner, sign_compact

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MESSAGE_TYP",
    "STREAMS",
    "Message",
    "StreamSpec",
    "bus_subject",
    "checkpoint_message",
    "checkpoint_msg_id",
    "checkpoint_time",
    "cosigned_checkpoint_message",
    "event_messages",
    "event_subjects",
    "payload_position",
    "stream_of",
    "subject_token",
]

MESSAGE_TYP = "commons-federation+jws"
"""The JWS ``typ`` of every federation message."""

MAX_MESSAGE_BYTES = 64 * 1024
"""The streams' maximum message size; a spine event's message is a few hundred bytes."""


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A JetStream stream: its name, subjects and duplicate window (seconds)."""

    name: str
    subjects: tuple[str, ...]
    duplicate_window: float = 24 * 3600.0


STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec("COMMONS_EVENTS", ("events.>",)),
    StreamSpec("COMMONS_REVOCATIONS", ("revocations.>",)),
    StreamSpec("COMMONS_RULES", ("rules.>",)),
    StreamSpec("COMMONS_CHECKPOINTS", ("checkpoints.>",)),
    StreamSpec("COMMONS_MEMBERS", ("members.>",)),
    StreamSpec("COMMONS_BUS", ("identity.>", "consent.>", "credential.>")),
)
"""Every stream, created idempotently when the publisher connects (limits retention: the
messages stay for followers to catch up from the start; file storage)."""

_PREFIX_STREAM = {
    "events": "COMMONS_EVENTS",
    "revocations": "COMMONS_REVOCATIONS",
    "rules": "COMMONS_RULES",
    "checkpoints": "COMMONS_CHECKPOINTS",
    "members": "COMMONS_MEMBERS",
    "identity": "COMMONS_BUS",
    "consent": "COMMONS_BUS",
    "credential": "COMMONS_BUS",
}

_BUS = {
    "identity.created": "identity.created",
    "identity.attested": "identity.verified",
    "identity.updated": "identity.updated",
    "identity.identifier_bound": "identity.updated",
    "identity.holder_key_changed": "identity.updated",
    "subject.erased": "identity.erased",
    "consent.requested": "consent.requested",
    "consent.granted": "consent.granted",
    "consent.paused": "consent.paused",
    "consent.resumed": "consent.resumed",
    "consent.revoked": "consent.revoked",
    "consent.expired": "consent.expired",
    "credential.issued": "credential.issued",
}
_MEMBERS = {
    "reputation.member": "members.recorded",
    "reputation.member_revoked": "members.revoked",
    "reputation.member_reinstated": "members.reinstated",
    "reputation.excluded": "members.excluded",
}
_STATUS = {"revoke": "revoked", "suspend": "suspended", "reinstate": "reinstated"}
_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def subject_token(value: str) -> str:
    """``value`` as one NATS subject token: unchanged when it is ``[A-Za-z0-9_-]+``, else
    each other character as ``=XX`` (its code point in hex; ``=%04X`` above 0xFF)."""
    if _SAFE.fullmatch(value):
        return value
    if not value:
        return "="
    return "".join(
        c if _SAFE.fullmatch(c) else (f"={ord(c):02X}" if ord(c) < 256 else f"=u{ord(c):04X}")
        for c in value
    )


def stream_of(subject: str) -> str:
    """The stream that holds ``subject``."""
    return _PREFIX_STREAM[subject.split(".", 1)[0]]


def bus_subject(event_type: str, details: JsonObject) -> str | None:
    """The event-bus subject of a spine event, or ``None`` when the bus does not carry it."""
    if event_type == "credential.status_changed":
        verb = _STATUS.get(str(details.get("action")))
        return None if verb is None else f"credential.{verb}"
    return _BUS.get(event_type)


@dataclass(frozen=True, slots=True)
class Message:
    """One message to publish: subject, stream, JetStream message id, its position in its
    source (leaf index, or checkpoint size) and the signed body.  ``ordered``: whether it
    follows the stream's own order of positions, so that the publisher may skip it when the
    stream holds a later position; the committee's cosigned checkpoints do not (an older
    size can be cosigned after a newer one) and are never skipped by position."""

    subject: str
    stream: str
    msg_id: str
    position: int
    body: bytes
    ordered: bool = True


def event_subjects(document: JsonObject, origin: str) -> list[str]:
    """The subjects a spine event is published on (none, one or two), so a follower checks
    a message's ``sub`` against its event."""
    event_type = str(document["type"])
    details = document["details"]
    if not isinstance(details, dict):
        return []
    subjects = []
    if event_type == "reputation.event":
        subjects.append(f"events.{subject_token(str(details['ctx']))}")
    elif event_type in _MEMBERS:
        subjects.append(_MEMBERS[event_type])
    elif event_type == "rules.changed":
        subjects.append(f"rules.{subject_token(str(details['rule_set']))}")
    elif event_type == "credential.status_changed" and details.get("action") in _STATUS:
        subjects.append(f"revocations.{subject_token(origin)}")
    bus = bus_subject(event_type, details)
    if bus is not None:
        subjects.append(bus)
    return subjects


def event_messages(
    index: int, entry: bytes, document: JsonObject, origin: str, signer: JwsSigner
) -> list[Message]:
    """The messages of the spine event at leaf ``index``: none, one or two (a revocation is
    on ``revocations.<issuer>`` and on the bus).  The message id is the event's id in every
    stream (JetStream deduplicates per stream)."""
    subjects = event_subjects(document, origin)
    if not subjects:
        return []
    event_id = str(document["id"])
    messages = []
    for subject in subjects:
        payload: JsonObject = {
            "v": 1,
            "iss": origin,
            "sub": subject,
            "kind": "event",
            "index": index,
            "entry": entry.decode("utf-8"),
            "event": document,
        }
        body = sign_compact({"typ": MESSAGE_TYP}, payload, signer).encode("ascii")
        messages.append(Message(subject, stream_of(subject), event_id, index, body))
    return messages


def checkpoint_message(
    size: int, note: str, origin: str, signer: JwsSigner, created_at: datetime, *, log_key: str
) -> Message:
    """The message of the log's signed checkpoint of ``size`` (its note as stored, with the
    witness cosignatures gathered so far, and ``at``: when the platform made it, UTC, to
    the microsecond — the time the platform scores the checkpoint as of, which a full node
    scores as of too); its id is ``checkpoint:<log_key>:<size>``, ``log_key`` the RFC 7638
    thumbprint of the log's key (:func:`checkpoint_msg_id`)."""
    subject = f"checkpoints.{subject_token(origin)}"
    payload: JsonObject = {
        "v": 1,
        "iss": origin,
        "sub": subject,
        "kind": "checkpoint",
        "size": size,
        "note": note,
        "at": checkpoint_time(created_at),
    }
    body = sign_compact({"typ": MESSAGE_TYP}, payload, signer).encode("ascii")
    return Message(subject, stream_of(subject), checkpoint_msg_id(log_key, size), size, body)


def checkpoint_msg_id(log_key: str, size: int) -> str:
    """``checkpoint:<log_key>:<size>``: the log's key in the id, since every platform's
    checkpoints are numbered alike and two platforms can share an origin (the default
    public URL) but never a key — so JetStream never drops one platform's checkpoint as a
    copy of another's."""
    return f"checkpoint:{log_key}:{size}"


def cosigned_checkpoint_message(
    size: int, note: str, origin: str, signer: JwsSigner, created_at: datetime, *, log_key: str
) -> Message:
    """The message of the checkpoint of ``size`` once the checkpoint committee's line is on
    it (``note`` ends with that line): the same subject and payload as
    :func:`checkpoint_message`, published again with id
    ``checkpoint:<log_key>:<size>:committee`` so that JetStream does not take it for the
    plain one, and so that a node that mirrored the plain one learns the cosignature
    (docs/federation.md).  Not ``ordered``: an older size can be cosigned after a newer
    one."""
    plain = checkpoint_message(size, note, origin, signer, created_at, log_key=log_key)
    return Message(
        plain.subject, plain.stream, f"{plain.msg_id}:committee", size, plain.body, ordered=False
    )


def checkpoint_time(at: datetime) -> str:
    """A checkpoint message's ``at``: ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC)."""
    if at.tzinfo is None:
        raise ValueError("a checkpoint's time must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def payload_position(payload: JsonObject) -> int | None:
    """The source position a message's payload names (``index`` or ``size``)."""
    value = payload.get("index", payload.get("size"))
    return value if isinstance(value, int) and not isinstance(value, bool) else None
