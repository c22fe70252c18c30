"""Every cosigned checkpoint is published once, whatever order the committee completes them
in (docs/federation.md, "The committee's cosignature on a node"), on SQLite and PostgreSQL
with a real NATS server: a partial for an older size can complete its cosignature after a
newer size's was published, and the older one is published then (a flag per size, not a
cursor over sizes); a publisher restarted after a cosigned note publishes nothing again and
is not refused.  Bounded by counts."""

from __future__ import annotations

from tests.integration.federation.nats_server import NatsServer, stream_messages
from tests.integration.test_committee import World, add_events, world

from credit_commons.core.db import transaction
from credit_commons.federation import Publisher, PublisherState
from credit_commons.ledger import service as ledger_service
from credit_commons.ledger.note import parse_note

__all__ = ["world"]  # the committee's world, a fixture of this module too


def _committee_ids(url: str) -> list[str]:
    return [
        str(m["msg_id"])
        for m in stream_messages(url)
        if m["stream"] == "COMMONS_CHECKPOINTS" and str(m["msg_id"]).endswith(":committee")
    ]


def test_a_restarted_publisher_after_a_cosigned_note_is_not_refused(
    world: World, nats_server: NatsServer
) -> None:
    p = Publisher(world.log, nats_server.url, batch=100)
    try:
        p.run_pass()
        for i in (1, 2, 3):
            assert world.members[i].run_once().status == "signed"
        assert p.run_pass() == {"federation_cosigned": 1}
    finally:
        p.close()
    q = Publisher(world.log, nats_server.url, batch=100)
    try:
        assert q.run_pass() == {}
        assert q.state is PublisherState.UP
    finally:
        q.close()
    assert len(_committee_ids(nats_server.url)) == 1


def test_a_size_cosigned_after_a_later_one_is_published(
    world: World, nats_server: NatsServer
) -> None:
    first = world.size
    p = Publisher(world.log, nats_server.url, batch=100)
    try:
        p.run_pass()
        # Two members sign the first checkpoint: one short of the threshold.
        assert world.members[1].run_once().status == "signed"
        assert world.members[2].run_once().status == "signed"
        add_events(world.log, 10, start=300)
        for i in (1, 4, 5):  # the next checkpoint is cosigned and published first
            assert world.members[i].run_once().status == "signed"
        assert p.run_pass()["federation_cosigned"] == 1
        # The third partial for the first size arrives late and completes it.
        late = world.members[3]
        with transaction(world.log.read_sessions) as s:
            row = ledger_service.checkpoint_of_size(s, first)
            assert row is not None
            note, root = row.note, bytes(row.root)
        partial = late.share.share.sign(parse_note(note).text.encode())
        assert late.post_partial(first, root, partial)["cosigned"] is True
        assert p.run_pass() == {"federation_cosigned": 1}
        assert p.run_pass() == {}  # once
    finally:
        p.close()
    ids = _committee_ids(nats_server.url)
    assert len(ids) == len(set(ids)) == 2
    assert ids[-1].endswith(f":{first}:committee")
