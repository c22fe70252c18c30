"""Checking one federation message before anything is stored (docs/federation.md, "Full
node").  Pure: the node's pins in, a verified message or :class:`Dropped` out.

In order: the size (at most the streams' 64 KiB), the compact JWS under the pinned log key
with ``typ`` ``commons-federation+jws`` and ``alg`` EdDSA, the payload's schema (exactly
the members of an event or a checkpoint message), ``iss`` the followed log's origin,
``sub`` the NATS subject it came on and a subject of its stream; for an event, the entry's
``digest`` is ``sha256(JCS(event))``, its ``id`` and ``type`` are the event's, and ``sub``
is one the platform publishes that event on; for a checkpoint, the note verifies under the
pinned key for the same origin and names the payload's size.

An event whose leaf the node already mirrors under a checkpoint it verified can be
checked against that leaf instead of by its own signature (:func:`verify_covered`):
every check above but the Ed25519 one, then ``leaf_hash(entry)`` must be the mirrored
leaf at ``index``.  docs/federation.md ("Verifying a batch against its checkpoint") gives
the argument that this proves what the signature would.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from credit_commons.core.encoding import JsonObject, b64url_encode, canonical_json, sha256_hex
from credit_commons.core.errors import CommonsError
from credit_commons.federation import MAX_MESSAGE_BYTES, MESSAGE_TYP, event_subjects, stream_of
from credit_commons.formats.jws import CompactJws, parse_compact
from credit_commons.keys import KeyType, PublicKey
from credit_commons.ledger import Checkpoint, Ed25519Verifier, leaf_hash, verify_checkpoint

__all__ = [
    "DROP_REASONS",
    "Dropped",
    "Pins",
    "Received",
    "Verified",
    "checkpoint_at",
    "receive",
    "verify_covered",
    "verify_message",
    "verify_signed",
]

DROP_REASONS = (
    "oversize",
    "signature",
    "schema",
    "issuer",
    "subject",
    "digest",
    "checkpoint",
    "fork",
    "blob",
    "rules",
)
"""Why a message is dropped; each is a counter ``dropped.<reason>``."""


class Dropped(Exception):
    """A message that fails a check: dropped (acknowledged, never stored) and counted."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Pins:
    """What the node pinned on first use: the log's origin and signed-note key."""

    origin: str
    log_vkey: str

    # Parsed once per Pins, not once per message (a catch-up checks a million).
    @cached_property
    def note_verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier.from_vkey(self.log_vkey)

    @cached_property
    def jws_key(self) -> PublicKey:
        return PublicKey.from_raw(KeyType.ED25519, self.note_verifier.public_key)


_Token = Annotated[str, Field(min_length=1, max_length=255)]
_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z")
_COVERED_HEADER = b64url_encode(canonical_json({"alg": "EdDSA", "typ": MESSAGE_TYP}))
"""The protected header of every message the log signs (``sign_compact``, Ed25519)."""


class _EventPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    v: Literal[1]
    iss: _Token
    sub: _Token
    kind: Literal["event"]
    index: Annotated[int, Field(ge=0)]
    entry: Annotated[str, Field(max_length=4096)]
    event: JsonObject


class _CheckpointPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    v: Literal[1]
    iss: _Token
    sub: _Token
    kind: Literal["checkpoint"]
    size: Annotated[int, Field(ge=0)]
    note: Annotated[str, Field(max_length=MAX_MESSAGE_BYTES)]
    # When the platform made the checkpoint (UTC, ``…Z``): what a node scores it as of.
    # Absent from a message published before the platform sent it.
    at: Annotated[str, Field(max_length=32)] | None = None


@dataclass(frozen=True)
class Verified:
    """A message that passed every check: its position (leaf index or checkpoint size)."""

    stream: str
    subject: str
    kind: str
    position: int
    body: str
    event: JsonObject | None = None
    entry: bytes | None = None
    checkpoint: Checkpoint | None = None
    note: str | None = None


@dataclass(frozen=True)
class Received:
    """A message whose form is checked (at most 64 KiB, a compact JWS with an EdDSA
    ``alg``); neither its signature nor its content is checked yet."""

    stream: str
    subject: str
    text: str
    jws: CompactJws

    @cached_property
    def index(self) -> int | None:
        """The leaf index an event message names (``None`` for anything else); unchecked
        until one of the ``verify_*`` functions returns."""
        try:
            payload = self.jws.payload
        except CommonsError:
            return None
        index = payload.get("index")
        if payload.get("kind") != "event" or type(index) is not int or index < 0:
            return None
        return index


def receive(body: bytes, subject: str, stream: str) -> Received:
    """Check a message's size and form; raises :class:`Dropped` (``oversize``, or
    ``signature`` for what is no compact JWS)."""
    # 1. The size: at most the streams' own bound.
    if len(body) > MAX_MESSAGE_BYTES:
        raise Dropped("oversize", f"{len(body)} bytes")
    # 2. A compact JWS, EdDSA, the payload an I-JSON object (RFC 7515 §5.2 steps 1-8).
    try:
        text = body.decode("ascii")
        jws = parse_compact(text, algs=("EdDSA",))
        jws.payload  # noqa: B018 - a malformed payload raises here
    except (UnicodeDecodeError, CommonsError) as e:
        raise Dropped("signature", "not a JWS by the pinned log key") from e
    return Received(stream, subject, text, jws)


def verify_message(body: bytes, subject: str, stream: str, pins: Pins) -> Verified:
    """Check a message received on ``subject`` from ``stream``; raises :class:`Dropped`."""
    return verify_signed(receive(body, subject, stream), pins)


def verify_signed(received: Received, pins: Pins) -> Verified:
    """Check a received message by its own signature, then its content; raises
    :class:`Dropped`."""
    # 3. The signature under the pinned log key, and the type the log gives its messages.
    try:
        if received.jws.header.get("typ") != MESSAGE_TYP:
            raise Dropped("signature", "not a federation message")
        received.jws.verify(pins.jws_key)
    except CommonsError as e:
        raise Dropped("signature", "not a JWS by the pinned log key") from e
    return _content(received, pins)


def verify_covered(received: Received, pins: Pins, leaf: bytes) -> Verified:
    """Check a received event message whose index is a leaf the node mirrors, ``leaf``
    being that mirrored leaf hash (the mirrored tree's root matched a checkpoint verified
    under ``pins``): first that the message is in the form the log signs and that its entry
    is that leaf — the authentication, before anything else of the content is read — then
    its content.  Its signature is not what this relies on; raises :class:`Dropped`."""
    # 3. The protected header and the payload exactly as the log writes them (sign_compact:
    # RFC 8785 JSON of {"alg", "typ"} and of the payload), so that what is stored differs
    # from the log's own message in the signature segment alone.
    header_b64, payload_b64, _ = received.text.split(".")
    if header_b64 != _COVERED_HEADER:
        raise Dropped("signature", "not a federation message")
    # 4. The entry is the leaf a log-signed checkpoint's tree holds at that index
    # (RFC 6962 §2.1: the leaf hash is SHA-256(0x00 || entry)).
    entry = received.jws.payload.get("entry")
    if not isinstance(entry, str) or bytes(leaf_hash(entry.encode("utf-8"))) != leaf:
        raise Dropped("digest", "the entry is not the mirrored leaf")
    try:
        canonical = b64url_encode(canonical_json(received.jws.payload))
    except CommonsError as e:
        raise Dropped("schema", "the payload has no canonical JSON form") from e
    if payload_b64 != canonical:
        raise Dropped("schema", "the payload is not in the log's canonical form")
    # 5-9. The schema, origin, subject, the event's digest in the entry.
    verified = _content(received, pins)
    if verified.kind != "event" or verified.entry is None:
        raise Dropped("subject", "a checkpoint outside the checkpoints stream")
    return verified


def _content(received: Received, pins: Pins) -> Verified:
    # 4. The payload's schema: exactly an event's or a checkpoint's members.
    payload, stream, subject = received.jws.payload, received.stream, received.subject
    try:
        parsed: _EventPayload | _CheckpointPayload = (
            _CheckpointPayload.model_validate(payload)
            if payload.get("kind") == "checkpoint"
            else _EventPayload.model_validate(payload)
        )
    except ValidationError as e:
        raise Dropped("schema", f"{e.error_count()} schema errors") from e
    # 5. The followed log's origin, 6. the subject it came on, of this stream.
    if parsed.iss != pins.origin:
        raise Dropped("issuer", "iss is not the followed log")
    if parsed.sub != subject or _stream(subject) != stream:
        raise Dropped("subject", "sub is not the subject it came on")
    # 7-8. An event's digest and subjects, or a checkpoint's note.
    if isinstance(parsed, _CheckpointPayload):
        return _checkpoint(parsed, stream, received.text, pins)
    return _event(parsed, stream, received.text, pins)


def _stream(subject: str) -> str | None:
    try:
        return stream_of(subject)
    except KeyError:
        return None


def _event(payload: _EventPayload, stream: str, text: str, pins: Pins) -> Verified:
    entry = payload.entry.encode("utf-8")
    try:
        reference = json.loads(entry)
    except ValueError as e:
        raise Dropped("schema", "the entry is not JSON") from e
    event = payload.event
    try:
        digest = sha256_hex(canonical_json(event))
    except CommonsError as e:
        raise Dropped("schema", "the event has no canonical JSON form") from e
    if not isinstance(reference, dict) or reference.get("digest") != digest:
        raise Dropped("digest", "sha256(JCS(event)) is not the entry's digest")
    if reference.get("id") != event.get("id") or reference.get("type") != event.get("type"):
        raise Dropped("digest", "the entry names another event")
    try:
        published_on = event_subjects(event, pins.origin)
    except (KeyError, TypeError) as e:
        raise Dropped("schema", "the event is not a spine event") from e
    if payload.sub not in published_on:
        raise Dropped("subject", "the event is not published on this subject")
    return Verified(stream, payload.sub, "event", payload.index, text, event=event, entry=entry)


def checkpoint_at(value: str) -> datetime | None:
    """A checkpoint message's ``at`` as a UTC time, or ``None`` unless it is one
    (``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``)."""
    if not _AT.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
    except ValueError:
        return None


def _checkpoint(payload: _CheckpointPayload, stream: str, text: str, pins: Pins) -> Verified:
    try:
        checkpoint = verify_checkpoint(payload.note, pins.note_verifier, origin=pins.origin)
    except CommonsError as e:
        raise Dropped("checkpoint", e.detail) from e
    if checkpoint.size != payload.size:
        raise Dropped("checkpoint", "the note's size is not the message's")
    if payload.at is not None and checkpoint_at(payload.at) is None:
        raise Dropped("schema", "at is not a UTC time (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)")
    return Verified(
        stream,
        payload.sub,
        "checkpoint",
        payload.size,
        text,
        checkpoint=checkpoint,
        note=payload.note,
    )
