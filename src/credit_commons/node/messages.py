"""Checking one federation message before anything is stored (docs/federation.md, "Full
node").  Pure: the node's pins in, a verified message or :class:`Dropped` out.

In order: the size (at most the streams' 64 KiB), the compact JWS under the pinned log key
with ``typ`` ``commons-federation+jws`` and ``alg`` EdDSA, the payload's schema (exactly
the members of an event or a checkpoint message), ``iss`` the followed log's origin,
``sub`` the NATS subject it came on and a subject of its stream; for an event, the entry's
``digest`` is ``sha256(JCS(event))``, its ``id`` and ``type`` are the event's, and ``sub``
is one the platform publishes that event on; for a checkpoint, the note verifies under the
pinned key for the same origin and names the payload's size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from credit_commons.core.encoding import JsonObject, canonical_json, sha256_hex
from credit_commons.core.errors import CommonsError
from credit_commons.federation import MAX_MESSAGE_BYTES, MESSAGE_TYP, event_subjects, stream_of
from credit_commons.formats.jws import verify_compact
from credit_commons.keys import KeyType, PublicKey
from credit_commons.ledger import Checkpoint, Ed25519Verifier, verify_checkpoint

__all__ = ["DROP_REASONS", "Dropped", "Pins", "Verified", "verify_message"]

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

    @property
    def note_verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier.from_vkey(self.log_vkey)

    @property
    def jws_key(self) -> PublicKey:
        return PublicKey.from_raw(KeyType.ED25519, self.note_verifier.public_key)


_Token = Annotated[str, Field(min_length=1, max_length=255)]


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


def verify_message(body: bytes, subject: str, stream: str, pins: Pins) -> Verified:
    """Check a message received on ``subject`` from ``stream``; raises :class:`Dropped`."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise Dropped("oversize", f"{len(body)} bytes")
    try:
        text = body.decode("ascii")
        payload = verify_compact(text, pins.jws_key, typ=MESSAGE_TYP, algs=("EdDSA",))
    except (UnicodeDecodeError, CommonsError) as e:
        raise Dropped("signature", "not a JWS by the pinned log key") from e
    try:
        parsed: _EventPayload | _CheckpointPayload = (
            _CheckpointPayload.model_validate(payload)
            if payload.get("kind") == "checkpoint"
            else _EventPayload.model_validate(payload)
        )
    except ValidationError as e:
        raise Dropped("schema", f"{e.error_count()} schema errors") from e
    if parsed.iss != pins.origin:
        raise Dropped("issuer", "iss is not the followed log")
    if parsed.sub != subject or _stream(subject) != stream:
        raise Dropped("subject", "sub is not the subject it came on")
    if isinstance(parsed, _CheckpointPayload):
        return _checkpoint(parsed, stream, text, pins)
    return _event(parsed, stream, text, pins)


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
    if not isinstance(reference, dict) or reference.get("digest") != sha256_hex(
        canonical_json(event)
    ):
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


def _checkpoint(payload: _CheckpointPayload, stream: str, text: str, pins: Pins) -> Verified:
    try:
        checkpoint = verify_checkpoint(payload.note, pins.note_verifier, origin=pins.origin)
    except CommonsError as e:
        raise Dropped("checkpoint", e.detail) from e
    if checkpoint.size != payload.size:
        raise Dropped("checkpoint", "the note's size is not the message's")
    return Verified(
        stream,
        payload.sub,
        "checkpoint",
        payload.size,
        text,
        checkpoint=checkpoint,
        note=payload.note,
    )
