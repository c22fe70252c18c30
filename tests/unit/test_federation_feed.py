"""The subscription feed's topic grammar (docs/federation.md, "Subscribing over HTTP") and
the stream slots of ``GET /v1/subscribe``."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from credit_commons.federation import Topic, TopicInvalid, parse_topic, subject_token
from credit_commons.gateway.routes.subscribe import StreamsFull, StreamSlots, TooManyStreams


@pytest.mark.parametrize(
    ("text", "prefix", "name"),
    [
        ("consent.*", "consent", "*"),
        ("consent.granted", "consent", "granted"),
        ("credential.issued", "credential", "issued"),
        ("identity.>", "identity", ">"),
        ("events.shg=3Asavings", "events", "shg=3Asavings"),
        ("events.agri", "events", "agri"),
        ("revocations.localhost=3A8000=2Flog", "revocations", "localhost=3A8000=2Flog"),
        ("rules.aura-dev", "rules", "aura-dev"),
    ],
)
def test_topics_of_the_feed(text: str, prefix: str, name: str) -> None:
    assert parse_topic(text) == Topic(prefix, name)


@pytest.mark.parametrize(
    "text",
    [
        "",
        ">",
        "*",
        "*.granted",
        "consent",
        "consent.x",
        "consent.gr*",
        "consent.*.x",
        "events.a.b",
        "events.a b",
        "events.=G1",
        "events.=2e",  # escapes are upper-case hex, as subject_token writes them
        "checkpoints.*",
        "foo.bar",
        "events." + "a" * 200,
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(TopicInvalid) as refused:
        parse_topic(text)
    assert refused.value.status == 400
    assert refused.value.code == "subscribe.topic_invalid"


def test_every_escaped_context_is_a_valid_name() -> None:
    for ctx in ("shg:savings", "shg.lucknow", "a/b c", "ü", ""):
        assert parse_topic(f"events.{subject_token(ctx)}").name == subject_token(ctx)


def test_matching() -> None:
    assert parse_topic("consent.*").matches("consent.granted")
    assert parse_topic("consent.>").matches("consent.revoked")
    assert parse_topic("consent.granted").matches("consent.granted")
    assert not parse_topic("consent.granted").matches("consent.revoked")
    assert not parse_topic("consent.*").matches("credential.revoked")
    assert not parse_topic("events.agri").matches("events.agri2")


def test_stream_slots_per_credential_then_per_process() -> None:
    slots = StreamSlots(3, 2, CollectorRegistry())
    slots.take("a")
    slots.take("a")
    with pytest.raises(TooManyStreams):
        slots.take("a")
    slots.take("b")
    with pytest.raises(StreamsFull):
        slots.take("c")
    slots.give_back("a")
    slots.take("c")
    assert dict(slots.open) == {"a": 1, "b": 1, "c": 1}
    slots.close()
    slots.give_back("c")
    with pytest.raises(StreamsFull):  # shutting down: no new stream
        slots.take("c")
