"""The checkpoint committee wired (issue 20 item 3), on both databases: a log served over
HTTP (in-process app) and five member nodes, each with its own database and master key,
talking to it over HTTP.  Bounded by counts: a few checkpoints, a few passes per member."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.conftest import fresh_postgres_schema, make_settings, migrate
from tests.node_keys import registered_node

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64_decode, b64_encode
from credit_commons.core.settings import Settings
from credit_commons.events import record_event
from credit_commons.events.models import EventRow
from credit_commons.gateway.app import create_app
from credit_commons.gateway.deps import platform_audience
from credit_commons.keys import ServiceIdentity, issue_service_token
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.service import KeyRotated
from credit_commons.ledger import committee
from credit_commons.ledger import service as log_service
from credit_commons.ledger.checkpoint import Checkpoint, verify_checkpoint
from credit_commons.ledger.committee_errors import (
    CommitteeMembersUnbound,
    CommitteeSignatureMissing,
)
from credit_commons.ledger.committee_member import CommitteeMember, import_share
from credit_commons.ledger.committee_service import (
    PARTIAL_TOKEN_REFUSED,
    bind_member_nodes,
    member_nodes,
    register_committee,
)
from credit_commons.ledger.committee_setup import MemberShare, deal_files
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.models import (
    CommitteeEquivocationRow,
    CommitteeMemberNodeRow,
    CommitteeMemberStateRow,
)
from credit_commons.ledger.note import Ed25519Verifier, generate_key, parse_note, verify_note
from credit_commons.ledger.rfc6962 import Hash
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime

START = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def add_events(rt: Runtime, count: int, start: int = 0) -> None:
    with transaction(rt.sessions) as session:
        for i in range(start, start + count):
            record_event(
                session,
                KeyRotated(key_name="k", version=i + 1, key_type=KeyType.ED25519, kid=f"k{i}"),
                actor=rt.operator_actor(),
                at=rt.clock.now(),
            )
    LogWorker(rt, steps=[], probes=[]).run_once(force_checkpoint=True)


@dataclass
class World:
    log: Runtime
    client: TestClient
    shares: list[MemberShare]
    members: dict[int, CommitteeMember]
    clock: FixedClock
    size: int  # the first checkpoint's: 300 events, the committee's registration, …
    nodes: dict[int, ServiceIdentity]  # each member's full node's service key

    def auth(self, index: int, scopes: tuple[str, ...] = ("partials:write",)) -> dict[str, str]:
        """The service token of member ``index``'s node, as its member loop sends it."""
        token = self.nodes[index].token(audience=platform_audience(self.log), scopes=scopes, ttl=60)
        return {"Authorization": f"Bearer {token}"}

    @property
    def vkey(self) -> str:
        return log_identity(self.log).vkey

    @property
    def group_vkey(self) -> str:
        return self.shares[0].group.vkey


@contextlib.contextmanager
def member_runtime(
    tmp_path: Path, backend: str, index: int, clock: FixedClock
) -> Iterator[Runtime]:
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'member{index}.db'}"
        else:
            url = stack.enter_context(fresh_postgres_schema())
        settings = make_settings(tmp_path / f"member{index}", database_url=url)
        rt = Runtime.build(settings, clock=clock)
        stack.callback(rt.close)
        migrate(rt.engine)
        yield rt


@pytest.fixture
def world(settings: Settings, tmp_path: Path, backend_url: str) -> Iterator[World]:
    clock = FixedClock(START)
    backend = "sqlite" if backend_url.startswith("sqlite") else "postgresql"
    log = Runtime.build(settings, clock=clock)
    migrate(log.engine)
    group, shares = deal_files("commons-committee", 3, 5)
    with contextlib.ExitStack() as stack:
        stack.callback(log.close)
        nodes = {
            share.index: node_identity(log, tmp_path, f"node-m{share.index}") for share in shares
        }
        with transaction(log.sessions) as session:
            register_committee(
                session, log, group, nodes=[nodes[i].name for i in range(1, 6)], now=clock.now()
            )
        add_events(log, 300)
        client = stack.enter_context(TestClient(create_app(settings, runtime=log)))
        vkey = log_identity(log).vkey
        members: dict[int, CommitteeMember] = {}
        for share in shares:
            rt = stack.enter_context(member_runtime(tmp_path, backend, share.index, clock))
            with transaction(rt.sessions) as session:
                import_share(session, rt, share, now=clock.now())
            members[share.index] = CommitteeMember(
                rt,
                log_url="http://testserver",
                log_vkey=vkey,
                identity=nodes[share.index],
                client=client,
            )
        with transaction(log.read_sessions) as session:
            size = log_service.latest_checkpoint(session).size  # type: ignore[union-attr]
        yield World(log, client, shares, members, clock, size, nodes)


def node_identity(log: Runtime, tmp_path: Path, name: str) -> ServiceIdentity:
    """A full node's own service key, registered with the log by its operator."""
    assert isinstance(log.clock, FixedClock)
    return registered_node(log, tmp_path / f"{name}.json", name, clock=log.clock)


def checkpoint_note(world: World) -> str:
    answer = world.client.get("/v1/log/checkpoint")
    assert answer.status_code == 200
    return answer.text


def test_five_members_threshold_three_cosign_checkpoints(world: World) -> None:
    task = world.client.get("/v1/tasks/current").json()
    assert task["committee"]["threshold"] == 3
    assert task["committee"]["members"] == 5
    assert task["task"]["size"] == world.size
    assert task["task"]["partials"] == 0
    for index, cosigned in ((1, False), (2, False), (3, True)):
        report = world.members[index].run_once()
        assert report.status == "signed", report
        assert report.answer is not None
        assert report.answer["status"] == 200
        assert report.answer["cosigned"] is cosigned
        assert report.answer["partials"] == index
    # Signed: no task left, members 4 and 5 have nothing to do.
    assert world.client.get("/v1/tasks/current").json()["task"] is None
    assert world.members[4].run_once().status == "idle"
    note = checkpoint_note(world)
    # The group key alone verifies the committee's line (the log key is not needed) ...
    opened = committee.verify_committee_signature(note, world.group_vkey)
    assert Checkpoint.parse(opened.text).size == world.size
    # ... and the log's own signature still verifies beside it, as does the pair together.
    verify_checkpoint(note, Ed25519Verifier.from_vkey(world.vkey))
    both = verify_note(
        note,
        [
            Ed25519Verifier.from_vkey(world.vkey),
            committee.CommitteeVerifier.from_vkey(world.group_vkey),
        ],
    )
    assert len(both.verified) == 2
    # The next checkpoint: members 2, 4 and 5 extend their copies and sign it.
    add_events(world.log, 257, start=300)
    second = world.client.get("/v1/tasks/current").json()["task"]["size"]
    assert second >= world.size + 257
    for index in (2, 4, 5):
        assert world.members[index].run_once().status == "signed"
    note = checkpoint_note(world)
    opened = committee.verify_committee_signature(note, world.group_vkey)
    assert Checkpoint.parse(opened.text).size == second
    # Member 4 joined late: it fetched every leaf and recomputed the root.
    with transaction(world.members[4].rt.read_sessions) as session:
        state = session.scalars(sa.select(CommitteeMemberStateRow)).one()
        assert (state.size, state.signed_size) == (second, second)
    # A receipt carries the cosigned checkpoint too.
    with transaction(world.log.read_sessions) as session:
        event_id = session.scalars(sa.select(EventRow.id).limit(1)).one()
    receipt = world.client.get(f"/v1/log/receipts/{event_id}").json()
    committee.verify_committee_signature(receipt["checkpoint"], world.group_vkey)


def test_a_byzantine_member_is_refused_and_reported(world: World) -> None:
    log_vkey = Ed25519Verifier.from_vkey(world.vkey)
    task = world.client.get("/v1/tasks/current").json()["task"]
    size, right_root = task["size"], Hash.from_b64(task["root"])
    origin = log_identity(world.log).origin
    wrong_root = Hash(bytes(32 - 1) + b"\x01")
    byzantine = world.shares[3]  # member 4
    # Member 4 first signs the right root (as an honest member would) ...
    assert world.members[4].run_once().status == "signed"
    # ... then a wrong one for the same size: a valid partial, another root.
    wrong_text = Checkpoint(origin=origin, size=size, root_hash=wrong_root).format()
    partial = byzantine.share.sign(wrong_text.encode())
    body = {
        "group_key": b64_encode(byzantine.group.group_key),
        "member": 4,
        "size": size,
        "root": wrong_root.b64(),
        "signature": b64_encode(partial.signature),
    }
    refused = world.client.post("/v1/partials", json=body, headers=world.auth(4))
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "committee.equivocation"
    with transaction(world.log.read_sessions) as session:
        events = session.scalars(
            sa.select(EventRow).where(EventRow.type == "committee.equivocation")
        ).all()
        assert len(events) == 1
        details = json.loads(events[0].details)
        assert session.scalars(sa.select(CommitteeEquivocationRow)).one().member == 4
    assert details["member"] == 4
    assert details["size"] == size
    # Both signed statements are in the event, and each verifies on its own:
    # the member's partial over the wrong root ...
    member_key = byzantine.group.member(4)
    committee.verify_partial(
        committee.PartialSignature(4, b64_decode(details["signature"])),
        wrong_text.encode(),
        member_key,
    )
    assert details["root"] == wrong_root.b64()
    assert details["logged_root"] == right_root.b64()
    # ... its own partial over the log's root, and the log's signature of that root.
    right_text = Checkpoint(origin=origin, size=size, root_hash=right_root).format()
    committee.verify_partial(
        committee.PartialSignature(4, b64_decode(details["member_signature"])),
        right_text.encode(),
        member_key,
    )
    log_sig = b64_decode(details["log_signature"])
    assert int.from_bytes(log_sig[:4], "big") == log_vkey.key_id
    log_vkey.verify(right_text.encode(), log_sig[4:])
    # The same statement again: still refused, reported once.
    assert world.client.post("/v1/partials", json=body, headers=world.auth(4)).status_code == 409
    with transaction(world.log.read_sessions) as session:
        count = session.scalar(
            sa.select(sa.func.count()).where(EventRow.type == "committee.equivocation")
        )
        assert count == 1
    # A signature that does not verify under member 5's key is refused, not reported.
    forged = {**body, "member": 5}
    answer = world.client.post("/v1/partials", json=forged, headers=world.auth(5))
    assert answer.status_code == 400
    assert answer.json()["code"] == "committee.share_invalid"
    # The honest members still reach the threshold, without member 4's partial counted.
    for index in (1, 2, 3):
        assert world.members[index].run_once().status == "signed"
    committee.verify_committee_signature(checkpoint_note(world), world.group_vkey)


def test_with_two_members_up_the_log_serves_its_own_signature(world: World) -> None:
    for round_ in range(3):  # a few passes each: still two partials of three
        for index in (1, 2):
            report = world.members[index].run_once()
            assert report.status == "signed"
            assert report.answer is not None
            expected = 1 if (round_, index) == (0, 1) else 2
            assert report.answer["cosigned"] is False
            assert report.answer["partials"] == expected
    note = checkpoint_note(world)
    with pytest.raises(CommitteeSignatureMissing):
        committee.verify_committee_signature(note, world.group_vkey)
    assert verify_checkpoint(note, Ed25519Verifier.from_vkey(world.vkey)).size == world.size
    task = world.client.get("/v1/tasks/current").json()["task"]
    assert task["size"] == world.size
    assert task["partials"] == 2


def _tampering_tiles(client: TestClient) -> httpx.Client:
    # Serves the log's entry bundles with one byte of the first entry changed.
    def handler(request: httpx.Request) -> httpx.Response:
        answer = client.get(request.url.path)
        body = bytearray(answer.content)
        if answer.status_code == 200:
            body[10] ^= 0x01
        return httpx.Response(answer.status_code, content=bytes(body))

    return httpx.Client(base_url="http://tiles/", transport=httpx.MockTransport(handler))


def test_a_member_never_signs_a_root_it_cannot_reproduce(world: World) -> None:
    member = world.members[1]
    tampered = CommitteeMember(
        member.rt,
        log_url="http://testserver",
        log_vkey=world.vkey,
        identity=world.nodes[1],
        client=world.client,
        tiles_client=_tampering_tiles(world.client),
    )
    report = tampered.run_once()
    assert report.status == "refused"
    assert "cannot be reproduced" in (report.reason or "")
    with transaction(member.rt.read_sessions) as session:
        assert session.scalars(sa.select(CommitteeMemberStateRow)).first() is None
    # A log key other than the pinned one: refused before anything is fetched.
    other = Ed25519Verifier.from_vkey(world.vkey)
    _, stranger = generate_key(other.name)
    wrong_key = CommitteeMember(
        member.rt,
        log_url="http://testserver",
        log_vkey=stranger,
        identity=world.nodes[1],
        client=world.client,
    )
    report = wrong_key.run_once()
    assert report.status == "refused"
    assert "pinned log key" in (report.reason or "")
    assert world.client.get("/v1/tasks/current").json()["task"]["partials"] == 0
    # Once it signed the size, a task for another root at that size (a fork) is refused.
    assert member.run_once().status == "signed"
    with transaction(member.rt.sessions) as session:
        state = session.scalars(sa.select(CommitteeMemberStateRow)).one()
        state.signed_root = bytes(32)
    report = member.run_once()
    assert report.status == "refused"
    assert "does not extend" in (report.reason or "")


def test_membership_changes_are_time_locked(world: World) -> None:
    group2, shares2 = deal_files("commons-committee-2", 2, 3)
    new_nodes = [world.nodes[i].name for i in (1, 2, 3)]
    with transaction(world.log.sessions) as session:
        registered = register_committee(
            session, world.log, group2, nodes=new_nodes, now=world.clock.now()
        )
    notice = timedelta(seconds=world.log.settings.committee_notice)
    assert registered.version == 2
    assert registered.effective_at == START + notice
    listed = world.client.get("/v1/committee").json()["committees"]
    assert [(c["version"], c["in_effect"]) for c in listed] == [(1, True), (2, False)]
    with transaction(world.log.read_sessions) as session:
        changed = session.scalars(
            sa.select(EventRow).where(EventRow.type == "committee.changed")
        ).all()
    assert [json.loads(e.details)["version"] for e in changed] == [1, 2]
    # Until the notice has passed the old committee signs; the new one's partials are refused.
    assert world.client.get("/v1/tasks/current").json()["committee"]["version"] == 1
    text = checkpoint_note(world).split("\n\n")[0] + "\n"
    checkpoint = Checkpoint.parse(text)
    partial = shares2[0].share.sign(text.encode())
    body = {
        "group_key": b64_encode(group2.group_key),
        "member": 1,
        "size": checkpoint.size,
        "root": checkpoint.root_hash.b64(),
        "signature": b64_encode(partial.signature),
    }
    answer = world.client.post("/v1/partials", json=body, headers=world.auth(1))
    assert answer.status_code == 409
    assert answer.json()["code"] == "committee.not_current"
    world.clock.advance(notice)
    assert world.client.get("/v1/tasks/current").json()["committee"]["version"] == 2
    accepted = world.client.post("/v1/partials", json=body, headers=world.auth(1))
    assert accepted.json()["partials"] == 1
    # Registering the same committee twice is refused.
    with pytest.raises(Exception, match="registered already"), transaction(world.log.sessions) as s:
        register_committee(s, world.log, group2, nodes=new_nodes, now=world.clock.now())


@pytest.mark.parametrize(
    "change",
    [
        {"member": 0},
        {"member": 256},
        {"size": 0},
        {"root": "AAAA"},
        {"signature": "!" * 128},
        {"group_key": "A" * 63},
        {"extra": 1},
    ],
)
def test_partials_are_validated_at_the_boundary(world: World, change: dict[str, object]) -> None:
    share = world.shares[0]
    body: dict[str, object] = {
        "group_key": b64_encode(share.group.group_key),
        "member": 1,
        "size": 300,
        "root": b64_encode(bytes(32)),
        "signature": b64_encode(bytes(96)),
        **change,
    }
    answer = world.client.post("/v1/partials", json=body, headers=world.auth(1))
    assert answer.status_code in (400, 422), answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


def _task_partial(world: World, index: int) -> dict[str, object]:
    # Member ``index``'s valid partial over the log's current task.
    task = world.client.get("/v1/tasks/current").json()["task"]
    text = parse_note(task["checkpoint"]).text
    share = world.shares[index - 1]
    return {
        "group_key": b64_encode(share.group.group_key),
        "member": index,
        "size": task["size"],
        "root": task["root"],
        "signature": b64_encode(share.share.sign(text.encode()).signature),
    }


def test_a_partial_needs_its_members_node_token(world: World) -> None:
    body = _task_partial(world, 1)
    with transaction(world.log.sessions) as session:
        own_store = issue_service_token(
            session,
            world.log,
            service="node",
            scopes=["partials:write"],
            audience=platform_audience(world.log),
            ttl=60,
        )
    expiring = world.auth(1)
    refusals = {
        "none": {},
        "malformed": {"Authorization": "Bearer not-a-token"},
        "another node's": world.auth(2),
        "another scope": world.auth(1, ("log:state",)),
        "the platform's own node key": {"Authorization": f"Bearer {own_store}"},
    }
    answers = {
        why: world.client.post("/v1/partials", json=body, headers=h) for why, h in refusals.items()
    }
    world.clock.advance(timedelta(seconds=120))
    answers["expired"] = world.client.post("/v1/partials", json=body, headers=expiring)
    for why, answer in answers.items():
        assert answer.status_code == 401, (why, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        problem = answer.json()
        assert (problem["code"], problem["detail"]) == (
            "auth.service_token_invalid",
            PARTIAL_TOKEN_REFUSED,
        ), why
    assert world.client.get("/v1/tasks/current").json()["task"]["partials"] == 0
    # Its own node's token: accepted.
    accepted = world.client.post("/v1/partials", json=body, headers=world.auth(1))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["partials"] == 1


def test_members_are_bound_to_registered_nodes_fail_closed(world: World) -> None:
    names = [world.nodes[i].name for i in range(1, 6)]
    for nodes, said in (
        (names[:4], "each of the 5 members"),
        ([*names[:4], names[0]], "each once"),
        ([*names[:4], "node-nobody"], "node-nobody"),
    ):
        with (
            pytest.raises(CommitteeMembersUnbound, match=said),
            transaction(world.log.sessions) as session,
        ):
            bind_member_nodes(session, world.log, 1, nodes, now=world.clock.now())
    # A committee whose members are bound to no node (registered before bindings): every
    # partial is refused, however valid, until the operator binds them.
    with transaction(world.log.sessions) as session:
        session.execute(sa.delete(CommitteeMemberNodeRow))
    report = world.members[1].run_once()
    assert report.status == "signed"  # sent, and refused by the log
    assert report.answer is not None
    assert (report.answer["status"], report.answer["code"]) == (401, "auth.service_token_invalid")
    assert world.client.get("/v1/tasks/current").json()["task"]["partials"] == 0
    swapped = [names[1], names[0], *names[2:]]
    with transaction(world.log.sessions) as session:
        bind_member_nodes(session, world.log, 1, swapped, now=world.clock.now())
        assert member_nodes(session, 1) == dict(enumerate(swapped, 1))
    # Member 1's node is now member 2's: its token no longer carries member 1's partials.
    assert world.members[1].run_once().answer == report.answer
    with transaction(world.log.sessions) as session:
        bind_member_nodes(session, world.log, 1, names, now=world.clock.now())
        bound = session.scalars(
            sa.select(EventRow).where(EventRow.type == "committee.member_bound")
        ).all()
    assert len(bound) == 15  # at registration, then twice by bind
    assert json.loads(bound[-1].details) == {
        "committee": "commons-committee",
        "version": 1,
        "member": 5,
        "node": names[4],
    }
    answer = world.members[1].run_once().answer
    assert answer is not None
    assert (answer["status"], answer["partials"]) == (200, 1)
