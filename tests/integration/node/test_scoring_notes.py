"""A full node notes which mirrored leaves are the spine events it scores once, and keeps
the notes (node/scoring_notes.py, migration 0053), on SQLite and PostgreSQL: a scorer
started again on the same mirror reads no entry bundle again, a mirror without notes (one
upgraded from before 0053) reads them once, a grown checkpoint reads only the tiles not
noted; the refusal and ``GET /v1/node`` name exactly the leaves whose messages are missing."""

from __future__ import annotations

import json

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.integration.node.test_cutoff import _samples
from tests.integration.node.test_mirror import _messages, _mirror, _Platform, _record

from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_decode
from credit_commons.federation import Message
from credit_commons.gateway.node_app import create_node_app
from credit_commons.node import Mirror, NodeScorer, ScoringRefused
from credit_commons.node import scoring as node_scoring
from credit_commons.node.models import NodePinRow, NodeSpineLeafRow
from credit_commons.runtime import Runtime

EVENTS = 300  # a full entry bundle and a partial one


class _Counting(_Platform):
    """The platform, counting the entry bundles asked for."""

    def __init__(self, client: TestClient, blobs: dict[str, bytes]) -> None:
        super().__init__(client, blobs)
        self.bundles = 0

    def entries(self, tile: int, count: int) -> list[bytes]:
        self.bundles += 1
        return super().entries(tile, count)


def _pending(scorer: NodeScorer) -> str:
    with pytest.raises(ScoringRefused) as refused:
        scorer.score()
    assert refused.value.reason == "inputs_pending"
    return refused.value.detail


def _accept(mirror: Mirror, messages: list[Message], stream: str) -> None:
    for m in messages:
        if m.stream == stream:
            assert mirror.accept(m.body, m.subject, m.stream) in ("stored", "duplicate")


def test_spine_leaves_are_noted_once_and_kept(runtime: Runtime, client: TestClient) -> None:
    rt = runtime
    platform = _Counting(client, _record(rt, EVENTS))
    mirror = _mirror(rt, platform, [])
    messages = _messages(rt)
    _accept(mirror, messages, "COMMONS_CHECKPOINTS")
    platform.bundles = 0

    first = NodeScorer(mirror, member_token=lambda: "unused")
    assert _pending(first).startswith(f"{EVENTS} reputation event(s) and 0 membership")
    assert platform.bundles == 2  # tile 0 (256 entries) and the partial tile 1
    with transaction(rt.read_sessions) as session:
        noted = session.scalar(sa.select(sa.func.count()).select_from(NodeSpineLeafRow))
    assert noted == EVENTS

    # A restart: the notes are read from the database, not from the platform.
    again = NodeScorer(mirror, member_token=lambda: "unused")
    assert _pending(again).startswith(f"{EVENTS} reputation event(s) and 0 membership")
    assert platform.bundles == 2

    # Every event but two: the refusal and the node's state name exactly those leaves.
    events = [m for m in messages if m.stream == "COMMONS_EVENTS"]
    lost = [events[7], events[260]]
    _accept(mirror, [m for m in events if m not in lost], "COMMONS_EVENTS")
    leaves = sorted(_index(m) for m in lost)
    detail = _pending(again)
    assert detail.startswith("2 reputation event(s) and 0 membership")
    assert detail.endswith(f"(the first: leaf {leaves[0]})")
    state = TestClient(create_node_app(mirror, scorer=again)).get("/v1/node").json()
    assert state["scores"]["missing"] == {
        "COMMONS_EVENTS": {"count": 2, "first": leaves},
        "COMMONS_MEMBERS": {"count": 0, "first": []},
    }
    assert platform.bundles == 2

    # A mirror without notes (upgraded from before migration 0053): read once, then kept.
    with transaction(rt.sessions) as session:
        session.execute(sa.delete(NodeSpineLeafRow))
        session.execute(sa.delete(NodePinRow).where(NodePinRow.name == "spine_noted_below"))
    upgraded = NodeScorer(mirror, member_token=lambda: "unused")
    assert _pending(upgraded).startswith("2 reputation event(s)")
    assert platform.bundles == 4
    assert _pending(NodeScorer(mirror, member_token=lambda: "unused")).startswith("2 reputation")
    assert platform.bundles == 4

    # A grown log: only the tile not noted in full is read again.
    _record(rt, 5)
    grown = _messages(rt)
    _accept(mirror, grown, "COMMONS_CHECKPOINTS")
    platform.bundles = 0
    assert _pending(upgraded).startswith("7 reputation event(s)")
    assert platform.bundles == 1


def _index(message: Message) -> int:
    payload = json.loads(b64url_decode(message.body.decode("ascii").split(".")[1]))
    return int(payload["index"])


class _Unreachable(_Counting):
    """The platform, whose entry bundles cannot be fetched while ``down``."""

    down = False

    def entries(self, tile: int, count: int) -> list[bytes]:
        if self.down:
            raise httpx.ConnectError("the platform is unreachable")
        return super().entries(tile, count)


def _one_event_missing(
    rt: Runtime, client: TestClient
) -> tuple[_Unreachable, NodeScorer, TestClient]:
    """A node that mirrored six events' checkpoints and all but the first event: its
    platform (which can be made unreachable), its scorer and its HTTP app."""
    platform = _Unreachable(client, _record(rt, 6))
    mirror = _mirror(rt, platform, [])
    messages = _messages(rt)
    _accept(mirror, messages, "COMMONS_CHECKPOINTS")
    events = [m for m in messages if m.stream == "COMMONS_EVENTS"]
    _accept(mirror, events[1:], "COMMONS_EVENTS")
    scorer = NodeScorer(mirror, member_token=lambda: "unused")
    return platform, scorer, TestClient(create_node_app(mirror, scorer=scorer, metrics_ttl=0))


def test_missing_inputs_are_unknown_while_the_platform_is_unreachable(
    runtime: Runtime, client: TestClient
) -> None:
    # The scorer's last pass could not note the new checkpoint's leaves: GET /v1/node and
    # /metrics say the missing inputs are unknown, not the pass before's counts as current.
    rt = runtime
    platform, scorer, node = _one_event_missing(rt, client)
    missing = "commons_node_scoring_inputs_missing", (("stream", "COMMONS_EVENTS"),)
    assert _pending(scorer).startswith("1 reputation event(s)")
    assert node.get("/v1/node").json()["scores"]["missing"]["COMMONS_EVENTS"]["count"] == 1
    assert _samples(node.get("/metrics").text)[missing] == 1

    _record(rt, 2)
    _accept(scorer.mirror, _messages(rt), "COMMONS_CHECKPOINTS")
    platform.down = True
    with pytest.raises(httpx.ConnectError):
        scorer.score()
    assert node.get("/v1/node").json()["scores"]["missing"] is None
    samples = _samples(node.get("/metrics").text)
    assert missing not in samples
    assert ("commons_node_scoring_first_missing_leaf", ()) not in samples

    platform.down = False
    assert _pending(scorer).startswith("3 reputation event(s)")
    assert node.get("/v1/node").json()["scores"]["missing"]["COMMONS_EVENTS"]["count"] == 3
    assert _samples(node.get("/metrics").text)[missing] == 3


def test_missing_inputs_are_unknown_when_the_database_fails_before_they_are_read(
    runtime: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first read of a pass (the newest checkpoint) fails: the counts of the pass before
    # are not shown as current.
    rt = runtime
    _, scorer, node = _one_event_missing(rt, client)
    assert _pending(scorer).startswith("1 reputation event(s)")
    assert node.get("/v1/node").json()["scores"]["missing"]["COMMONS_EVENTS"]["count"] == 1

    def down(*_args: object, **_kwargs: object) -> None:
        raise sa.exc.OperationalError("SELECT", {}, Exception("the database is unreachable"))

    monkeypatch.setattr(node_scoring.store, "latest_checkpoint", down)
    with pytest.raises(sa.exc.OperationalError):
        scorer.score()
    monkeypatch.undo()
    assert node.get("/v1/node").json()["scores"]["missing"] is None
