"""The publisher's check that a stream's last message is this platform's
(federation/ownership.py; docs/federation.md, "One NATS account per platform"): accepted
only for a federation message naming one of this log's origins and signed by its key;
another origin, the same origin under another key, a message with no position and
anything that is no federation message are each refused, naming the stream."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from credit_commons.core.encoding import JsonObject
from credit_commons.federation import MESSAGE_TYP, StreamsNotOurs, checkpoint_message
from credit_commons.federation.ownership import OurLog, own_position
from credit_commons.formats.jws import sign_compact
from credit_commons.keys import PrivateKey

OURS = PrivateKey.generate()
ORIGIN = "localhost:8000/log"
LOG = OurLog(frozenset({"old.example/log", ORIGIN}), OURS.public_key)


def message(payload: JsonObject, key: PrivateKey = OURS, typ: str = MESSAGE_TYP) -> bytes:
    return sign_compact({"typ": typ}, payload, key).encode("ascii")


def event(iss: str, index: int = 41) -> JsonObject:
    return {"v": 1, "iss": iss, "sub": "identity.created", "kind": "event", "index": index}


def refused(body: bytes) -> StreamsNotOurs:
    with pytest.raises(StreamsNotOurs) as caught:
        own_position("COMMONS_BUS", body, LOG)
    assert [r.stream for r in caught.value.refusals] == ["COMMONS_BUS"]
    assert caught.value.code == "federation.streams_not_ours"
    assert "NATS account" in (caught.value.hint or "")
    return caught.value


def test_this_platforms_messages_give_their_position() -> None:
    assert own_position("COMMONS_BUS", message(event(ORIGIN)), LOG) == 41
    # An origin this log signed under before a declared new origin is this log's too.
    assert own_position("COMMONS_BUS", message(event("old.example/log", 7)), LOG) == 7
    at = datetime(2026, 12, 7, tzinfo=UTC)
    checkpoint = checkpoint_message(12, f"{ORIGIN}\n12\n…\n", ORIGIN, OURS, at, log_key="test")
    assert own_position("COMMONS_CHECKPOINTS", checkpoint.body, LOG) == 12


def test_another_origin_is_refused_and_named() -> None:
    error = refused(message(event("127.0.0.1:8300/log", 4)))
    assert error.refusals[0].other == "messages of log '127.0.0.1:8300/log'"
    assert error.refusals[0].position == 4
    assert "COMMONS_BUS holds messages of log '127.0.0.1:8300/log'" in error.detail


def test_the_same_origin_under_another_key_is_refused() -> None:
    # Two platforms left at the default public URL have the same origin.
    error = refused(message(event(ORIGIN), key=PrivateKey.generate()))
    assert error.refusals[0].other == f"messages of log {ORIGIN!r} signed by another key"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xfe",
        b"hello",
        b"a.b.c",
        message(event(ORIGIN), typ="JWT"),
        message(event(ORIGIN))[:-4],  # truncated: the signature no longer verifies
    ],
)
def test_what_is_no_message_of_ours_is_refused(body: bytes) -> None:
    refused(body)


def test_a_message_without_iss_or_position_is_refused() -> None:
    no_iss = {k: v for k, v in event(ORIGIN).items() if k != "iss"}
    assert refused(message(no_iss)).refusals[0].other == "a federation message with no iss"
    no_index = {k: v for k, v in event(ORIGIN).items() if k != "index"}
    assert refused(message(no_index)).refusals[0].position is None


def test_a_long_foreign_origin_is_shortened_in_what_is_said() -> None:
    error = refused(message(event("x" * 5000)))
    assert len(error.refusals[0].other) < 200
