"""The committee's cosignature reaches full nodes (docs/federation.md, "The committee's
cosignature on a node"), on SQLite and PostgreSQL with a real NATS server: once the
committee's line is combined on the platform (five member nodes, three signing, the real
path of tests/integration/test_committee.py), the publisher sends the cosigned note again
on ``checkpoints.<origin>`` under its own message id, after the plain one; a node that
pinned the committee's group key verifies it and serves it on ``/v1/checkpoints/latest``,
byte for byte the platform's ``/v1/log/checkpoint``.  A committee line that does not verify
(another committee's key pinned, a flipped bit) is removed and counted
``dropped.committee``, never served.  Bounded by counts."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.integration.federation.nats_server import NatsServer, stream_messages
from tests.integration.node.test_mirror import _Platform
from tests.integration.test_committee import World, checkpoint_note, world

from credit_commons.core.db import transaction
from credit_commons.federation import Publisher, subject_token
from credit_commons.federation.subjects import cosigned_checkpoint_message
from credit_commons.gateway.node_app import create_node_app
from credit_commons.keys import KeyType, PublicKey, thumbprint
from credit_commons.ledger import CommitteeVerifier, committee
from credit_commons.ledger import service as ledger_service
from credit_commons.ledger.committee_setup import deal_files
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.note import Signature, parse_note
from credit_commons.node import Mirror
from credit_commons.node import store as node_store

__all__ = ["world"]  # the committee's world, a fixture of this module too

CHECKPOINTS = "COMMONS_CHECKPOINTS"


def _checkpoint_messages(url: str) -> list[dict[str, object]]:
    return [m for m in stream_messages(url) if m["stream"] == CHECKPOINTS]


def _feed(mirror: Mirror, messages: list[dict[str, object]]) -> list[str]:
    return [
        mirror.accept(bytes(m["body"]), str(m["subject"]), CHECKPOINTS)  # type: ignore[arg-type]
        for m in messages
    ]


def _dropped_committee(world: World) -> int:
    with transaction(world.log.read_sessions) as session:
        return node_store.counters(session).get("dropped.committee", 0)


def test_a_node_serves_the_committees_cosignature(world: World, nats_server: NatsServer) -> None:
    rt, size = world.log, world.size
    publisher = Publisher(rt, nats_server.url, batch=100)
    try:
        plain = publisher.run_pass()
        assert plain["federation_checkpoints"] >= 1
        assert "federation_cosigned" not in plain  # nothing cosigned yet
        for index in (1, 2, 3):  # the real path: each member reproduces the root and signs
            assert world.members[index].run_once().status == "signed"
        platform_note = checkpoint_note(world)
        committee.verify_committee_signature(platform_note, world.group_vkey)
        assert publisher.run_pass() == {"federation_cosigned": 1}
        assert publisher.run_pass() == {}  # published once
    finally:
        publisher.close()
    messages = _checkpoint_messages(nats_server.url)
    origin = log_identity(rt).origin
    key = thumbprint(PublicKey.from_raw(KeyType.ED25519, log_identity(rt).public_key))
    assert messages[-1]["msg_id"] == f"checkpoint:{key}:{size}:committee"
    assert messages[-1]["subject"] == f"checkpoints.{subject_token(origin)}"
    assert [m["msg_id"] for m in messages].index(f"checkpoint:{key}:{size}") < len(messages) - 1

    node = Mirror(rt.sessions, _Platform(world.client, {}), rt.clock)
    node.start()
    served = TestClient(create_node_app(node))
    # No committee key pinned: the plain checkpoint is mirrored, the line is dropped.
    assert _feed(node, messages) == ["stored"] * (len(messages) - 1) + ["duplicate"]
    assert _dropped_committee(world) == 1
    latest = served.get("/v1/checkpoints/latest").text
    assert "— commons-committee" not in latest
    assert parse_note(latest).text == parse_note(platform_note).text

    # Another committee's key pinned: the line does not verify under it either.
    other, _ = deal_files("commons-committee", 3, 5)
    wrong = Mirror(
        rt.sessions,
        _Platform(world.client, {}),
        rt.clock,
        committee_keys=[CommitteeVerifier.from_vkey(other.vkey)],
    )
    wrong.start()
    assert _feed(wrong, messages[-1:]) == ["duplicate"]
    assert _dropped_committee(world) == 2
    assert "— commons-committee" not in served.get("/v1/checkpoints/latest").text

    # The right key, and a line with one bit flipped: dropped, counted, never served.
    pinned = Mirror(
        rt.sessions,
        _Platform(world.client, {}),
        rt.clock,
        committee_keys=[CommitteeVerifier.from_vkey(world.group_vkey)],
    )
    pinned.start()
    note = parse_note(platform_note)
    line = note.signatures[-1]
    flipped = Signature(line.name, line.key_id, bytes([line.signature[0] ^ 1]) + line.signature[1:])
    with transaction(rt.read_sessions) as session:
        signer = rt.key_store.signer(session, log_identity(rt).key_name)
        at = next(a for s, _, a in ledger_service.checkpoints_after(session, 0, 100) if s == size)
    forged = cosigned_checkpoint_message(
        size, note.with_signatures(flipped).format(), origin, signer, at, log_key="test"
    )
    assert pinned.accept(forged.body, forged.subject, CHECKPOINTS) == "duplicate"
    assert _dropped_committee(world) == 3
    assert "— commons-committee" not in served.get("/v1/checkpoints/latest").text

    # The published cosigned note: verified under the pinned group key and served, the
    # platform's note byte for byte; delivered again, nothing changes.
    assert _feed(pinned, messages[-1:]) == ["stored"]
    assert _feed(pinned, messages) == ["duplicate"] * len(messages)
    assert _dropped_committee(world) == 3
    latest = served.get("/v1/checkpoints/latest").text
    assert latest == platform_note
    assert served.get(f"/v1/checkpoints/{size}").text == platform_note
    committee.verify_committee_signature(latest, world.group_vkey)  # the group key alone
