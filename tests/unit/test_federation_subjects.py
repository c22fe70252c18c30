"""Federation subjects (docs/federation.md): tokens escaped reversibly, the bus mapping, and
one JetStream stream for every subject a message can have."""

from __future__ import annotations

import re

import pytest

from credit_commons.federation import STREAMS, bus_subject, subject_token
from credit_commons.federation.subjects import stream_of


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ("agri", "agri"),
        ("shg.lucknow", "shg=2Elucknow"),
        ("localhost:8000/log", "localhost=3A8000=2Flog"),
        ("a*b>c d=e", "a=2Ab=3Ec=20d=3De"),
        ("", "="),
    ],
)
def test_subject_tokens_are_single_safe_tokens(value: str, token: str) -> None:
    assert subject_token(value) == token
    assert re.fullmatch(r"[A-Za-z0-9_=-]+", token)


def test_escaping_is_unambiguous() -> None:
    values = ["a.b", "a=2Eb", "a/b", "a=2Fb", "ab", "a:b"]
    assert len({subject_token(v) for v in values}) == len(values)


def test_the_bus_carries_the_seed_events_and_nothing_else() -> None:
    assert bus_subject("identity.created", {}) == "identity.created"
    assert bus_subject("identity.attested", {}) == "identity.verified"
    assert bus_subject("subject.erased", {}) == "identity.erased"
    assert bus_subject("consent.granted", {}) == "consent.granted"
    assert bus_subject("consent.revoked", {}) == "consent.revoked"
    assert bus_subject("credential.issued", {}) == "credential.issued"
    assert bus_subject("credential.status_changed", {"action": "revoke"}) == "credential.revoked"
    assert bus_subject("credential.status_changed", {"action": "other"}) is None
    assert bus_subject("access.allowed", {}) is None
    assert bus_subject("key.rotated", {}) is None


@pytest.mark.parametrize(
    "subject",
    ["events.x", "revocations.x", "rules.x", "checkpoints.x", "identity.created", "consent.x"],
)
def test_every_subject_has_one_stream(subject: str) -> None:
    prefix = subject.split(".", maxsplit=1)[0]
    holders = [s.name for s in STREAMS if f"{prefix}.>" in s.subjects]
    assert holders == [stream_of(subject)]
