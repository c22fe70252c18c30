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

import base64
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from json.encoder import encode_basestring
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from credit_commons.core.encoding import (
    MAX_JSON_DEPTH,
    JsonObject,
    b64url_decode,
    b64url_encode,
    canonical_json,
    json_nesting_exceeds,
    sha256_hex,
)
from credit_commons.core.errors import CommonsError
from credit_commons.federation import MAX_MESSAGE_BYTES, MESSAGE_TYP, event_subjects, stream_of
from credit_commons.formats.jws import parse_compact
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
    "committee",
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


MAX_INDEX = 2**63 - 1
"""The largest leaf index a message can name: what a signed 64-bit position column holds."""

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
    index: Annotated[int, Field(ge=0, le=MAX_INDEX)]
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
    """A message whose size is checked and whose payload was read, unchecked: an ASCII
    text of three dot-separated segments, the second base64url of a JSON object.  Neither
    its form (strict base64url, I-JSON, the header), its signature nor its content is
    checked yet: :func:`verify_signed` and :func:`verify_covered` each check all of it."""

    stream: str
    subject: str
    text: str
    segments: tuple[str, str, str]
    payload: JsonObject

    @cached_property
    def index(self) -> int | None:
        """The leaf index an event message names (``None`` for anything else); unchecked
        until one of the ``verify_*`` functions returns."""
        index = self.payload.get("index")
        if self.payload.get("kind") != "event" or type(index) is not int:
            return None
        # Beyond a signed 64-bit integer no leaf can be (nor a position column hold it):
        # malformed, left to the schema to refuse.
        return index if 0 <= index <= MAX_INDEX else None


def receive(body: bytes, subject: str, stream: str) -> Received:
    """Check a message's size and read its payload; raises :class:`Dropped` (``oversize``,
    or ``signature`` for what cannot be a compact JWS with a JSON object payload)."""
    # 1. The size: at most the streams' own bound.
    if len(body) > MAX_MESSAGE_BYTES:
        raise Dropped("oversize", f"{len(body)} bytes")
    # 2. Three segments, the payload a JSON object.  Read leniently and once: a message a
    # mirrored leaf covers is then held to the exact bytes the log writes (verify_covered),
    # which no lenient reading can pass, and any other is parsed again strictly (RFC 7515
    # §5.2, I-JSON) before its signature is checked (verify_signed).
    try:
        text = body.decode("ascii")
        header_b64, payload_b64, signature_b64 = text.split(".")
        payload = _unchecked_object(payload_b64)
    except ValueError as e:  # UnicodeDecodeError, binascii.Error, JSONDecodeError too
        raise Dropped("signature", "not a JWS by the pinned log key") from e
    return Received(stream, subject, text, (header_b64, payload_b64, signature_b64), payload)


def _unchecked_object(segment: str) -> JsonObject:
    # base64url and JSON as the standard library reads them (padding optional, duplicate
    # names and NaN let through), the nesting bounded first as json_decode bounds it.
    data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode("utf-8")
    if json_nesting_exceeds(data, MAX_JSON_DEPTH):
        raise ValueError("JSON nested too deeply")
    try:
        value = json.loads(data)
    except RecursionError as e:
        raise ValueError("JSON nested too deeply") from e
    if not isinstance(value, dict):
        raise ValueError("the payload is not a JSON object")
    return value


def verify_message(body: bytes, subject: str, stream: str, pins: Pins) -> Verified:
    """Check a message received on ``subject`` from ``stream``; raises :class:`Dropped`."""
    return verify_signed(receive(body, subject, stream), pins)


def verify_signed(received: Received, pins: Pins) -> Verified:
    """Check a received message by its own signature, then its content; raises
    :class:`Dropped`."""
    # 3. A compact JWS, EdDSA, the payload an I-JSON object (RFC 7515 §5.2 steps 1-8); the
    # signature under the pinned log key, and the type the log gives its messages.
    try:
        jws = parse_compact(received.text, algs=("EdDSA",))
        if jws.header.get("typ") != MESSAGE_TYP:
            raise Dropped("signature", "not a federation message")
        jws.verify(pins.jws_key)
    except CommonsError as e:
        raise Dropped("signature", "not a JWS by the pinned log key") from e
    return _content(_schema(jws.payload), received, pins)


def verify_covered(received: Received, pins: Pins, leaf: bytes) -> Verified:
    """Check a received event message whose index is a leaf the node mirrors, ``leaf``
    being that mirrored leaf hash (the mirrored tree's root matched a checkpoint verified
    under ``pins``): first that the message is in the form the log signs and that its entry
    is that leaf — the authentication, before anything else of the content is read — then
    its content.  Its signature is not what this relies on; raises :class:`Dropped`."""
    # 3. The protected header exactly as the log writes it (sign_compact: RFC 8785 JSON of
    # {"alg", "typ"}), and a signature segment of strict base64url, as parse_compact reads.
    header_b64, payload_b64, signature_b64 = received.segments
    if header_b64 != _COVERED_HEADER:
        raise Dropped("signature", "not a federation message")
    try:
        if not signature_b64:
            raise Dropped("signature", "the JWS signature is empty")
        b64url_decode(signature_b64)
    except CommonsError as e:
        raise Dropped("signature", "the JWS signature is not canonical base64url") from e
    # 4. The entry is the leaf a log-signed checkpoint's tree holds at that index
    # (RFC 6962 §2.1: the leaf hash is SHA-256(0x00 || entry)).
    payload = received.payload
    # An entry with no UTF-8 form (a lone surrogate the lenient reading let through) is
    # no leaf's: the log's entries are UTF-8 bytes.
    entry = payload.get("entry")
    try:
        if not isinstance(entry, str) or bytes(leaf_hash(entry.encode("utf-8"))) != leaf:
            raise Dropped("digest", "the entry is not the mirrored leaf")
    except UnicodeEncodeError as e:
        raise Dropped("digest", "the entry is not the mirrored leaf") from e
    # 5. The payload exactly the log's bytes (RFC 8785 of the payload), so that what is
    # stored differs from the log's own message in the signature segment alone.  The
    # equality also refuses what the lenient reading let through: duplicate names, NaN,
    # non-canonical base64url, other number or string forms.
    try:
        event_jcs = canonical_json(payload["event"]) if "event" in payload else None
        canonical = _payload_jcs(payload, event_jcs)
    except CommonsError as e:
        raise Dropped("schema", "the payload has no canonical JSON form") from e
    if b64url_encode(canonical) != payload_b64:
        raise Dropped("schema", "the payload is not in the log's canonical form")
    # 6-10. The schema, origin, subject, the event's digest in the entry.
    parsed = _schema(payload)
    if not isinstance(parsed, _EventPayload):
        raise Dropped("subject", "a checkpoint outside the checkpoints stream")
    return _content(parsed, received, pins, event_jcs)


def _payload_jcs(payload: JsonObject, event_jcs: bytes | None) -> bytes:
    # RFC 8785 §3.2.3: the members in name order, each value in its own canonical form, the
    # event's given (computed once, for its digest too).  ASCII names sort by code point as
    # by UTF-16 unit; other names go through canonical_json whole.
    if event_jcs is None or not all(name.isascii() for name in payload):
        return canonical_json(payload)
    members = [
        _scalar_jcs(name) + b":" + (event_jcs if name == "event" else _scalar_jcs(payload[name]))
        for name in sorted(payload)
    ]
    return b"{" + b",".join(members) + b"}"


_SAFE_INTEGER = 2**53 - 1


def _scalar_jcs(value: object) -> bytes:
    # What canonical_json writes for a string (the standard library's C string encoder,
    # ensure_ascii off) or a safe integer, without its per-call checks; anything else, and a
    # string it cannot encode (a lone surrogate), goes through canonical_json.
    if type(value) is str:
        try:
            return encode_basestring(value).encode("utf-8")
        except UnicodeEncodeError:
            return canonical_json(value)
    if type(value) is int and -_SAFE_INTEGER <= value <= _SAFE_INTEGER:
        return str(value).encode("ascii")
    return canonical_json(value)


def _schema(payload: JsonObject) -> _EventPayload | _CheckpointPayload:
    # The payload's schema: exactly an event's or a checkpoint's members.
    try:
        return (
            _CheckpointPayload.model_validate(payload)
            if payload.get("kind") == "checkpoint"
            else _EventPayload.model_validate(payload)
        )
    except ValidationError as e:
        raise Dropped("schema", f"{e.error_count()} schema errors") from e


def _content(
    parsed: _EventPayload | _CheckpointPayload,
    received: Received,
    pins: Pins,
    event_jcs: bytes | None = None,
) -> Verified:
    stream, subject = received.stream, received.subject
    # The followed log's origin, the subject it came on, of this stream.
    if parsed.iss != pins.origin:
        raise Dropped("issuer", "iss is not the followed log")
    if parsed.sub != subject or _stream(subject) != stream:
        raise Dropped("subject", "sub is not the subject it came on")
    # An event's digest and subjects, or a checkpoint's note.
    if isinstance(parsed, _CheckpointPayload):
        return _checkpoint(parsed, stream, received.text, pins)
    return _event(parsed, stream, received.text, pins, event_jcs)


def _stream(subject: str) -> str | None:
    try:
        return stream_of(subject)
    except KeyError:
        return None


def _event(
    payload: _EventPayload, stream: str, text: str, pins: Pins, event_jcs: bytes | None
) -> Verified:
    entry = payload.entry.encode("utf-8")
    try:
        reference = json.loads(entry)
    except ValueError as e:
        raise Dropped("schema", "the entry is not JSON") from e
    event = payload.event
    try:
        digest = sha256_hex(canonical_json(event) if event_jcs is None else event_jcs)
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
