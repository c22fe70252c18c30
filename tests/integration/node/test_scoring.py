"""Reputation events published on a platform are scored identically by two full nodes
(issue 20: "reputation events published on B are scored identically on A and C"), the
platform on SQLite and PostgreSQL, each node on its own SQLite, one real
``nats-server -js``: the platform (B) records memberships (KYC, an attestation, one
suspended and reinstated, one revoked), vouches and reports and an excluded DID, and scores
its checkpoint; nodes A and C follow it through NATS and score their mirrors with the same
pure core.  Every record on A equals C's and B's byte for byte, each served score's hash is
the one B's score bundle proves offline, and a node whose mirrored rule set was tampered
with, or that mirrors none, refuses to score.  Bounded by counts of polls."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from tests.integration.federation.nats_server import NatsServer
from tests.integration.node.test_follow import _log_size, _publish
from tests.integration.node.test_mirror import _Forward
from tests.integration.reputation_world import (
    AT,
    CTX,
    KYC_VCT,
    active_rules,
    checkpoint,
    fetch_bundle,
    member_did,
    register_dev_rules,
    register_member,
    signed_event,
    submit,
)
from tests.node_keys import registered_node

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import dispose_engine, make_engine, make_sessionmaker, transaction
from credit_commons.core.encoding import b64url_decode, b64url_encode, sha256_hex
from credit_commons.core.migrate import upgrade
from credit_commons.federation import Publisher
from credit_commons.gateway.deps import platform_audience
from credit_commons.gateway.node_app import create_node_app
from credit_commons.keys import ServiceIdentity
from credit_commons.node import (
    Follower,
    Mirror,
    NodeScorer,
    Platform,
    ScoringRefused,
    service_token,
)
from credit_commons.node import store as node_store
from credit_commons.node.models import NodeMemberRow, NodeMessageRow, NodeRuleSetRow
from credit_commons.reputation import service as reputation_service
from credit_commons.reputation.models import ReputationMemberRow
from credit_commons.reputation.scores_bundle import verify_bundle
from credit_commons.reputation.scores_service import ScoringState, score_checkpoint
from credit_commons.reputation.scores_store import ScoreRow
from credit_commons.runtime import Runtime

MAX_POLLS = 1200  # x 50 ms
ATTESTATION_VCT = "https://credit-commons.dev/vct/attestation/v1"


@pytest.fixture(autouse=True)
def clock(runtime: Runtime) -> FixedClock:
    fixed = FixedClock(AT)
    runtime.clock = fixed
    register_dev_rules(runtime)
    return fixed


def _member_id(rt: Runtime, n: int) -> str:
    with transaction(rt.read_sessions) as session:
        row = session.scalar(
            select(ReputationMemberRow).where(ReputationMemberRow.did == member_did(n))
        )
        assert row is not None
        return row.id


def _world(rt: Runtime) -> int:
    """Eight members: 3 with an attestation besides, 6 suspended and reinstated, 7 revoked,
    8 excluded after vouching; vouches among 1-4, reports on 4, vouches from 5, 7 and 8;
    checkpointed and scored by the platform.  The number of events submitted."""
    rules = active_rules(rt)
    for n in range(1, 9):
        register_member(rt, n, rules=rules)
    register_member(rt, 3, rules=rules, vct=ATTESTATION_VCT, credential_sha256="ab" * 32)
    pairs = [(i, j, "vouch") for i in range(1, 5) for j in range(1, 5) if i != j]
    pairs += [(5, 4, "report"), (6, 4, "report"), (7, 4, "report")]
    pairs += [(5, 1, "vouch"), (7, 2, "vouch"), (8, 3, "vouch"), (6, 5, "vouch")]
    for sender, to, kind in pairs:
        submit(rt, signed_event(sender, to, type=kind), rules)
    with transaction(rt.sessions) as session:
        assert reputation_service.revoke_membership(session, rt, _member_id(rt, 6), "suspended")
    with transaction(rt.sessions) as session:
        assert reputation_service.reinstate_membership(session, rt, _member_id(rt, 6))
    with transaction(rt.sessions) as session:
        assert reputation_service.revoke_membership(session, rt, _member_id(rt, 7), "revoked")
    with transaction(rt.sessions) as session:
        reputation_service.exclude_did(session, rt, member_did(8), "tombstone")
    checkpoint(rt)
    assert score_checkpoint(rt, ScoringState()) is not None
    return len(pairs)


def _node_identity(rt: Runtime, clock: FixedClock, path: Path, name: str) -> ServiceIdentity:
    """A full node's own service key, registered on the platform by its operator."""
    return registered_node(rt, path, name, clock=clock)


def _node_db(tmp_path: Path, name: str) -> tuple[sa.Engine, sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / name}.db")
    upgrade(engine)
    return engine, make_sessionmaker(engine)


def _caught_up(sessions: sessionmaker[Session], events: int, members: int, size: int) -> bool:
    with transaction(sessions) as session:
        counters = node_store.counters(session)
        latest = node_store.latest_checkpoint(session)
    return (
        counters.get("accepted.COMMONS_EVENTS", 0) == events
        and counters.get("accepted.COMMONS_MEMBERS", 0) == members
        and latest is not None
        and int(latest.size) == size
    )


def _platform_records(rt: Runtime) -> dict[tuple[str, str], bytes]:
    with transaction(rt.read_sessions) as session:
        return {(r.did, r.ctx): bytes(r.record) for r in session.scalars(select(ScoreRow))}


def test_two_nodes_score_the_platforms_events_identically(
    runtime: Runtime,
    client: TestClient,
    nats_server: NatsServer,
    tmp_path: Path,
    clock: FixedClock,
) -> None:
    rt = runtime
    events = _world(rt)
    members = 8 + 1 + 2 + 1 + 1  # registrations, suspension, reinstatement, revocation, exclusion
    platform_records = _platform_records(rt)
    assert len(platform_records) >= 8

    # The platform's member documents: by spine event id, nothing more than a bundle says,
    # to registered full nodes only (a service token with scope members:read), never cached.
    identities = {
        name: _node_identity(rt, clock, tmp_path / f"key-{name}.json", f"node-{name}")
        for name in ("a", "c")
    }
    audience = platform_audience(rt)
    bearer = identities["a"].token(audience=audience, scopes=["members:read"], ttl=60)
    auth = {"Authorization": f"Bearer {bearer}"}
    with transaction(rt.read_sessions) as session:
        member = session.get(ReputationMemberRow, _member_id(rt, 7))
        excluded_member = session.get(ReputationMemberRow, _member_id(rt, 8))
        assert member is not None
        assert excluded_member is not None
        event_id = member.event_id
    anonymous = client.get(f"/v1/reputation/members/{event_id}")
    assert anonymous.status_code == 401, anonymous.text
    assert member_did(7) not in anonymous.text
    other_scope = identities["a"].token(audience=audience, scopes=["log:state"], ttl=60)
    refused = client.get(
        f"/v1/reputation/members/{event_id}", headers={"Authorization": f"Bearer {other_scope}"}
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "auth.service_scope_missing"
    document = client.get(f"/v1/reputation/members/{event_id}", headers=auth)
    assert document.status_code == 200, document.text
    assert document.headers["cache-control"] == "private, no-store"
    assert document.json() == {
        "event": event_id,
        "did": member_did(7),
        "kyc": True,
        "since": AT.date().isoformat(),
        "credentialSha256": "07" * 32,
        "issuer": rt.settings.public_url,
        "vct": KYC_VCT,
    }
    # An excluded DID's membership (its tombstone): not served any more, as if unknown.
    for unknown in (excluded_member.event_id, "evt_00000000000000000000000000", "a" * 64):
        missing = client.get(f"/v1/reputation/members/{unknown}", headers=auth)
        assert missing.status_code == 404, unknown
        assert missing.json()["code"] == "reputation.member_not_found"

    publisher = Publisher(rt, nats_server.url, batch=50)
    nodes = []
    try:
        _publish(publisher)
        for name in ("a", "c"):
            engine, sessions = _node_db(tmp_path, f"node-{name}")
            mirror = Mirror(
                sessions, Platform("http://127.0.0.1", transport=_Forward(client)), rt.clock
            )
            mirror.start()
            follower = Follower(mirror, nats_server.url, f"node-{name}", batch=32, idle=0.05)
            follower.start()
            nodes.append((engine, sessions, mirror, follower))
        size = _log_size(client)
        for _, sessions, _, _ in nodes:
            for _ in range(MAX_POLLS):
                if _caught_up(sessions, events, members, size):
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("a node did not catch up")
        for _, _, _, follower in nodes:
            follower.stop()

        scored = []
        for (_, sessions, mirror, _), name in zip(nodes, ("a", "c"), strict=True):
            tokens = service_token(mirror.platform, identities[name], "members:read", ttl=60)
            scorer = NodeScorer(mirror, member_token=tokens)
            # One document per registration, but the excluded DID's: neither asked for
            # (the platform would answer 404) nor needed.
            assert scorer.mirror_members() == 8
            assert scorer.member_failures() == {}
            with transaction(sessions) as session:
                assert member_did(8) not in {r.did for r in session.scalars(select(NodeMemberRow))}
            assert scorer.mirror_members() == 0  # mirrored once
            result = scorer.score()
            assert result is not None
            assert result.size == size
            assert result.as_of == AT.date()
            scored.append((scorer, result))
        (scorer_a, a), (scorer_c, c) = scored
        assert dict(a.records) == dict(c.records) == platform_records
        # The excluded DID's membership is left out (as the platform's scorer leaves it).
        assert (a.events, a.members) == (events, 7)

        # A node that has the checkpoint (and the rule set) but not yet the events and
        # memberships below it refuses, naming what it lacks; caught up, it scores the same
        # — a day later by its own clock, as of the day the platform made the checkpoint.
        with transaction(nodes[0][1]) as session:
            held = [
                (row.stream, row.subject, row.body.encode("ascii"))
                for row in session.scalars(
                    select(NodeMessageRow).order_by(NodeMessageRow.stream, NodeMessageRow.position)
                )
            ]
        order = ["COMMONS_CHECKPOINTS", "COMMONS_RULES"]
        engine_b, sessions_b = _node_db(tmp_path, "node-b")
        mirror_b = Mirror(
            sessions_b,
            Platform("http://127.0.0.1", transport=_Forward(client)),
            FixedClock(AT + timedelta(days=1)),
        )
        nodes.append((engine_b, sessions_b, mirror_b, Follower(mirror_b, nats_server.url, "b")))
        mirror_b.start()
        for stream, subject, body in held:
            if stream in order:
                assert mirror_b.accept(body, subject, stream) == "stored"
        late = NodeScorer(
            mirror_b,
            member_token=service_token(mirror_b.platform, identities["a"], "members:read", ttl=60),
        )
        assert late.mirror_members() == 0
        with pytest.raises(ScoringRefused) as refused:
            late.score()
        assert refused.value.reason == "inputs_pending"
        assert f"{events} reputation event(s) and {members} membership" in refused.value.detail
        assert late.scores() is None
        for stream, subject, body in held:
            if stream == "COMMONS_MEMBERS":
                assert mirror_b.accept(body, subject, stream) == "stored"
        assert late.mirror_members() == 8
        with pytest.raises(ScoringRefused) as refused:
            late.score()  # the events are still missing
        assert refused.value.detail.startswith(f"{events} reputation event(s) and 0 membership")
        for stream, subject, body in held:
            if stream == "COMMONS_EVENTS":
                assert mirror_b.accept(body, subject, stream) == "stored"
        caught_up = late.score()
        assert caught_up is not None
        assert caught_up.as_of == AT.date()
        assert dict(caught_up.records) == platform_records
        assert late.score() is caught_up  # the same inputs: the cached records

        # Each node serves the hash that the platform's bundle proves offline.
        node_a = TestClient(create_node_app(nodes[0][2], scorer=scorer_a))
        node_c = TestClient(create_node_app(nodes[1][2], scorer=scorer_c))
        for n in (1, 2, 3, 4, 5, 6):
            bundle = fetch_bundle(client, n)
            assert bundle.status_code == 200, bundle.text
            verified = verify_bundle(bundle.json(), trust_bundle_keys=True)
            for node in (node_a, node_c):
                served = node.get("/v1/scores", params={"did": member_did(n), "ctx": CTX})
                assert served.status_code == 200, served.text
                body = served.json()
                assert body["recordHash"] == verified.record_hash
                assert body["recordHash"] == sha256_hex(platform_records[(member_did(n), CTX)])
                assert body["checkpoint"]["size"] == verified.checkpoint_size
                hidden = {"factors", "score", "tier", "diversity"}
                visible = {k: v for k, v in verified.record.items() if k not in hidden}
                assert body["record"] == visible
                assert body["ruleSet"] == verified.record["ruleSet"]
        excluded = node_a.get("/v1/scores", params={"did": member_did(8), "ctx": CTX})
        assert excluded.status_code == 404
        assert node_a.get("/v1/node").json()["scores"]["records"] == len(platform_records)

        # A node whose token the platform refuses: every document fails, is asked for again
        # only after its back-off, and the refusal names the missing membership's event.
        _, sessions_c, mirror_c, _ = nodes[1]
        with transaction(sessions_c) as session:
            session.execute(sa.delete(NodeMemberRow))
        asked: list[int] = []

        def junk() -> str:
            asked.append(1)
            return "not-a-token"

        source = {"token": junk}

        def current() -> str:  # the node's token source, renewed below
            return source["token"]()

        failing = NodeScorer(mirror_c, member_token=current)
        assert failing.mirror_members() == 0
        failures = failing.member_failures()
        assert len(failures) == 8
        assert len(asked) == 8
        assert all("HTTP 401" in why for why in failures.values())
        assert failing.mirror_members() == 0
        assert len(asked) == 8
        with pytest.raises(ScoringRefused) as refused:
            failing.score()
        assert refused.value.reason == "members_pending"
        assert any(event_id in refused.value.detail for event_id in failures)
        clock.advance(timedelta(seconds=6))  # the first back-off is over
        assert failing.mirror_members() == 0
        assert len(asked) == 16
        with transaction(sessions_c) as session:
            counters = node_store.counters(session)
        assert counters["scoring.member_failed"] == 16
        # The platform accepts the token again: the documents are mirrored, scoring resumes.
        source["token"] = service_token(mirror_c.platform, identities["c"], "members:read", ttl=60)
        clock.advance(timedelta(seconds=11))
        assert failing.mirror_members() == 8
        assert failing.member_failures() == {}
        again = failing.score()
        assert again is not None
        assert dict(again.records) == platform_records

        # A tampered rule set on C: refused, and said so.
        with transaction(sessions_c) as session:
            row = session.scalars(select(NodeRuleSetRow)).one()
            header, payload, signature = row.token.split(".")
            document = json.loads(b64url_decode(payload))
            document["ruleSet"]["iterations"] += 1  # a signed number changed
            forged = b64url_encode(json.dumps(document).encode())
            row.token = f"{header}.{forged}.{signature}"
        tampered = NodeScorer(mirror_c, member_token=lambda: "unused")
        with pytest.raises(ScoringRefused) as refused:
            tampered.score()
        assert refused.value.reason == "rule_set_unverified"
        assert tampered.scores() is None
        node = TestClient(create_node_app(mirror_c, scorer=tampered))
        answer = node.get("/v1/scores", params={"did": member_did(1), "ctx": CTX})
        assert answer.status_code == 409
        assert answer.json()["code"] == "node.scoring_refused"
        assert answer.json()["reason"] == "rule_set_unverified"
        assert node.get("/v1/node").json()["scores"]["refused"] == "rule_set_unverified"

        # No rule set mirrored at all: refused too.
        with transaction(sessions_c) as session:
            session.execute(sa.delete(NodeRuleSetRow))
        unknown = NodeScorer(mirror_c, member_token=lambda: "unused")
        with pytest.raises(ScoringRefused) as refused:
            unknown.score()
        assert refused.value.reason == "no_rule_set"
    finally:
        for engine, _, mirror, follower in nodes:
            follower.stop()
            mirror.platform.close()
            dispose_engine(engine)
        publisher.close()
