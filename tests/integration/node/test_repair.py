"""A full node's way out of missing scoring inputs (docs/federation.md, "Missing inputs"),
on SQLite and PostgreSQL: the scorer, ``GET /v1/node`` and ``/metrics`` name the leaves
whose messages are missing (one the mirror dropped for good, one the stream lost);
:func:`repair_inputs` fetches them from the platform's ``GET
/v1/internal/log/messages/{index}`` (a registered node's token, scope ``log:messages``)
and stores only what passes the checks a NATS message passes — a tampered copy is refused
and the leaf stays missing — after which scoring no longer waits for inputs.  With a real
``nats-server -js``: a message deleted from the events stream stalls the follower for good
until :func:`skip_lost_gaps` moves its cursor past it (and past nothing the stream still
holds); the leaf is then repaired from the platform."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import nats
import pytest
from fastapi.testclient import TestClient
from tests.integration.federation.nats_server import NatsServer
from tests.integration.node.test_cutoff import _samples
from tests.integration.node.test_follow import _publish
from tests.integration.node.test_mirror import _counters, _messages, _mirror, _Platform, _record
from tests.node_keys import registered_node

from credit_commons.core.encoding import b64url_decode, b64url_encode, canonical_json
from credit_commons.federation import Publisher
from credit_commons.gateway.deps import platform_audience
from credit_commons.gateway.node_app import create_node_app
from credit_commons.keys import ServiceIdentity
from credit_commons.node import (
    Follower,
    Mirror,
    NodeScorer,
    ScoringRefused,
    StreamGap,
    repair_inputs,
    service_token,
    skip_lost_gaps,
)
from credit_commons.runtime import Runtime

EVENTS = 20
MAX_POLLS = 600  # x 50 ms


class _Tampering(_Platform):
    """The platform, but the messages it serves for ``leaf`` have their event altered."""

    leaf = -1

    def leaf_messages(self, index: int, token: Callable[[], str]) -> list[tuple[str, str, bytes]]:
        found = super().leaf_messages(index, token)
        if index != self.leaf:
            return found
        out = []
        for stream, subject, body in found:
            header, payload, signature = body.decode("ascii").split(".")
            document = json.loads(b64url_decode(payload))
            document["event"]["actor"] = "p1:someone-else"
            forged = b64url_encode(canonical_json(document))
            out.append((stream, subject, f"{header}.{forged}.{signature}".encode()))
        return out


def _identity(rt: Runtime, tmp_path: Path, name: str) -> ServiceIdentity:
    return registered_node(rt, tmp_path / f"{name}.json", name)


def _index(body: bytes) -> int:
    return int(json.loads(b64url_decode(body.decode("ascii").split(".")[1]))["index"])


def _refusal(scorer: NodeScorer) -> ScoringRefused:
    with pytest.raises(ScoringRefused) as refused:
        scorer.score()
    return refused.value


def test_missing_inputs_are_named_and_repaired_from_the_platform(
    runtime: Runtime, client: TestClient, tmp_path: Path
) -> None:
    rt = runtime
    platform = _Tampering(client, _record(rt, EVENTS))
    drops: list[tuple[str, str]] = []
    mirror: Mirror = _mirror(rt, platform, drops)
    messages = _messages(rt)
    events = [m for m in messages if m.stream == "COMMONS_EVENTS"]
    for m in messages:
        if m.stream == "COMMONS_CHECKPOINTS":
            assert mirror.accept(m.body, m.subject, m.stream) == "stored"
    # Event 3 reaches the node only on the wrong subject (dropped for good: NATS will not
    # deliver it again), event 11 never (the stream lost it); the others arrive.
    dropped, lost = events[3], events[11]
    assert mirror.accept(dropped.body, "events.other", dropped.stream) == "dropped"
    for m in events:
        if m not in (dropped, lost):
            assert mirror.accept(m.body, m.subject, m.stream) == "stored"
    leaves = sorted(_index(m.body) for m in (dropped, lost))

    scorer = NodeScorer(mirror, member_token=lambda: "unused")
    refused = _refusal(scorer)
    assert refused.reason == "inputs_pending"
    assert refused.detail.startswith("2 reputation event(s) and 0 membership")
    node = TestClient(create_node_app(mirror, scorer=scorer, metrics_ttl=0))
    assert node.get("/v1/node").json()["scores"]["missing"]["COMMONS_EVENTS"] == {
        "count": 2,
        "first": leaves,
    }
    samples = _samples(node.get("/metrics").text)
    events_label = (("stream", "COMMONS_EVENTS"),)
    assert samples[("commons_node_scoring_inputs_missing", events_label)] == 2
    assert samples[("commons_node_scoring_inputs_missing", (("stream", "COMMONS_MEMBERS"),))] == 0
    assert samples[("commons_node_scoring_first_missing_leaf", ())] == leaves[0]

    # The platform's route: a registered node's token with scope log:messages only.
    identity = _identity(rt, tmp_path, "node-r")
    audience = platform_audience(rt)
    route = f"/v1/internal/log/messages/{leaves[0]}"
    assert client.get(route).status_code == 401
    other = identity.token(audience=audience, scopes=["members:read"], ttl=60)
    assert client.get(route, headers={"Authorization": f"Bearer {other}"}).status_code == 403
    bearer = {
        "Authorization": "Bearer "
        + identity.token(audience=audience, scopes=["log:messages"], ttl=60)
    }
    served = client.get(route, headers=bearer)
    assert served.status_code == 200, served.text
    original = dropped if _index(dropped.body) == leaves[0] else lost
    assert served.json() == {
        "index": leaves[0],
        "messages": [
            {"stream": m.stream, "subject": m.subject, "body": m.body.decode("ascii")}
            for m in messages
            if m.position == leaves[0] and m.stream != "COMMONS_CHECKPOINTS"
        ],
    }
    assert original.body.decode("ascii") in served.text
    beyond = client.get("/v1/internal/log/messages/1000000", headers=bearer)
    assert beyond.status_code == 404

    # A repair through a platform that tampers with one leaf's message: that one is
    # refused (its entry is not the mirrored leaf) and stays missing; the other is stored.
    tokens = service_token(platform, identity, "log:messages", ttl=60)
    platform.leaf = leaves[1]
    report = repair_inputs(mirror, tokens)
    assert report.repaired == [leaves[0]]
    assert list(report.unrepaired) == [leaves[1]]
    assert "fails the node's checks" in report.unrepaired[leaves[1]]
    assert report.remaining.counts["COMMONS_EVENTS"] == 1
    assert drops[-1] == ("COMMONS_EVENTS", "digest")
    assert _refusal(scorer).detail.startswith("1 reputation event(s)")
    # The platform honest again: repaired, and scoring no longer waits for inputs.
    platform.leaf = -1
    report = repair_inputs(mirror, tokens)
    assert (report.repaired, report.unrepaired) == ([leaves[1]], {})
    assert report.remaining.counts == {"COMMONS_EVENTS": 0, "COMMONS_MEMBERS": 0}
    assert _refusal(scorer).reason != "inputs_pending"  # the next check: these are no votes
    assert node.get("/v1/node").json()["scores"]["missing"]["COMMONS_EVENTS"]["count"] == 0
    # Nothing is left to repair; a second run changes nothing.
    assert repair_inputs(mirror, tokens).repaired == []


async def _delete(url: str, stream: str, sequence: int) -> None:
    nc = await nats.connect(url, allow_reconnect=False)
    try:
        assert await nc.jsm().delete_msg(stream, sequence)
    finally:
        await nc.close()


def _poll(condition: Callable[[], bool], what: str) -> None:
    for _ in range(MAX_POLLS):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not reached after {MAX_POLLS} polls: {what}")


def test_a_stream_that_lost_a_message_is_skipped_and_the_leaf_repaired(
    runtime: Runtime, client: TestClient, nats_server: NatsServer, tmp_path: Path
) -> None:
    rt = runtime
    platform = _Platform(client, _record(rt, 30))
    mirror = _mirror(rt, platform, [])
    publisher = Publisher(rt, nats_server.url, batch=50)
    follower = Follower(mirror, nats_server.url, "node-gap", batch=8, idle=0.05)
    try:
        _publish(publisher)
        # The stream's operator deletes the fifth event: the node stalls before it for good.
        asyncio.run(_delete(nats_server.url, "COMMONS_EVENTS", 5))
        follower.start()
        _poll(lambda: _counters(rt).get("gaps", 0) >= 2, "the follower waiting at the gap")
        assert _counters(rt)["accepted.COMMONS_EVENTS"] == 4
        gaps = skip_lost_gaps(mirror, nats_server.url)
        assert gaps == [StreamGap("COMMONS_EVENTS", 4, 5, skipped=True)]
        _poll(lambda: _counters(rt).get("accepted.COMMONS_EVENTS") == 29, "the rest stored")
        assert _counters(rt)["gaps.skipped.COMMONS_EVENTS"] == 1
        # Nothing else is gone: a second look skips nothing (a late message is waited for).
        assert skip_lost_gaps(mirror, nats_server.url) == []
    finally:
        follower.stop()
        publisher.close()
    events = [m for m in _messages(rt) if m.stream == "COMMONS_EVENTS"]
    scorer = NodeScorer(mirror, member_token=lambda: "unused")
    refused = _refusal(scorer)
    assert refused.detail.startswith("1 reputation event(s) and 0 membership")
    assert scorer.missing.first["COMMONS_EVENTS"] == (events[4].position,)
    identity = _identity(rt, tmp_path, "node-g")
    report = repair_inputs(mirror, service_token(platform, identity, "log:messages", ttl=60))
    assert (report.repaired, report.unrepaired) == ([events[4].position], {})
    assert _refusal(scorer).reason != "inputs_pending"
