"""The federation publisher against a real NATS JetStream, on SQLite and PostgreSQL (issue 20
item 1): every spine event on its subjects from the log's order, signed by the log's key,
each exactly once — after a SIGKILL between the acknowledgements and the cursor commit too,
and across a NATS server killed and restarted mid-stream — and nothing personal in any
message.  Bounded by counts (events, passes), never by wall time."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from tests.integration.federation.nats_server import NatsServer, stream_messages, verified_payloads
from tests.integration.test_identity_privacy import PERSON, SECRET_STRINGS

from credit_commons.core.db import transaction
from credit_commons.core.encoding import canonical_json
from credit_commons.core.settings import Settings
from credit_commons.events import EventSpec, record_events
from credit_commons.federation import Publisher, PublisherState, subject_token
from credit_commons.federation.models import FederationCursorRow
from credit_commons.federation.publisher import SPINE, read_cursor
from credit_commons.federation.subjects import checkpoint_time
from credit_commons.issuer.registry import CredentialChanged
from credit_commons.jobs import default_steps, federation_step
from credit_commons.keys import KeyType, PublicKey, thumbprint
from credit_commons.ledger import service as ledger_service
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.worker import LogWorker
from credit_commons.node.messages import checkpoint_at
from credit_commons.reputation.rules_service import RulesChanged
from credit_commons.reputation.service import EventRecorded
from credit_commons.runtime import Runtime

MAX_PASSES = 400


def record_reputation(rt: Runtime, count: int, *, start: int = 0) -> None:
    """``count`` reputation events over two contexts (one needing escapes), sequenced."""
    now = rt.clock.now()
    sender = rt.pseudonymizer.pseudonym("did", "did:key:sender")
    specs = [
        EventSpec(
            EventRecorded(
                cid=f"bafy{i:06d}",
                kind="vouch" if i % 3 else "report",
                ctx="agri" if i % 2 else "shg.lucknow",
                epoch="2026-W49",
                from_sha256=hashlib.sha256(b"did:key:sender").hexdigest(),
                to_sha256=hashlib.sha256(f"did:key:{i}".encode()).hexdigest(),
            ),
            actor=sender,
            subject=rt.pseudonymizer.pseudonym("did", f"did:key:{i}"),
            at=now,
        )
        for i in range(start, start + count)
    ]
    with transaction(rt.sessions) as session:
        record_events(session, specs)
    LogWorker(rt, steps=[]).run_once()


def cursor(rt: Runtime) -> int:
    with transaction(rt.read_sessions) as session:
        return read_cursor(session, SPINE)


def publish_all(publisher: Publisher, rt: Runtime, size: int) -> None:
    for _ in range(MAX_PASSES):
        publisher.run_pass()
        if cursor(rt) >= size and publisher.state is PublisherState.UP:
            return
        time.sleep(0.05)
    raise AssertionError(f"cursor {cursor(rt)} never reached {size}")


def checkpoint_count(rt: Runtime) -> int:
    with transaction(rt.read_sessions) as session:
        return len(ledger_service.checkpoints_after(session, 0, 1000))


def assert_exactly_once(messages: list[dict[str, object]], expected: int) -> None:
    keys = Counter((m["stream"], m["msg_id"]) for m in messages)
    assert len(messages) == expected
    assert [k for k, n in keys.items() if n > 1] == []


def test_publishes_every_event_signed_on_its_subjects(
    runtime: Runtime, nats_server: NatsServer
) -> None:
    rt = runtime
    record_reputation(rt, 150)
    now = rt.clock.now()
    operator = rt.operator_actor()
    revoked = rt.objects.digest("credential", "crd_1")
    with transaction(rt.sessions) as session:
        record_events(
            session,
            [
                EventSpec(
                    RulesChanged(
                        rule_set="aura-dev", version=1, hash="a" * 64, valid_from=now, dev=True
                    ),
                    actor=operator,
                    at=now,
                ),
                EventSpec(
                    CredentialChanged(action="revoke"), actor=operator, at=now, object=revoked
                ),
            ],
        )
    report = LogWorker(rt, steps=[]).run_once(force_checkpoint=True)
    size = report.size
    assert size == 152
    assert report.checkpoint == size
    with transaction(rt.read_sessions) as session:
        made = {s: at for s, _, at in ledger_service.checkpoints_after(session, 0, 100)}
        checkpoints = list(made)
    assert checkpoints[-1] == size

    publisher = Publisher(rt, nats_server.url, batch=40)
    try:
        first = publisher.run_pass()
        assert first == {
            "federation_events": 152,
            "federation_messages": 153,  # the revocation is on two subjects
            "federation_checkpoints": len(checkpoints),
        }
        assert publisher.run_pass() == {}  # nothing new: nothing published again
    finally:
        publisher.close()
    assert cursor(rt) == size

    messages = stream_messages(nats_server.url)
    assert_exactly_once(messages, 153 + len(checkpoints))
    payloads = verified_payloads(rt, messages)
    origin = log_identity(rt).origin
    log_key = thumbprint(PublicKey.from_raw(KeyType.ED25519, log_identity(rt).public_key))
    subjects = Counter(str(m["subject"]) for m in messages)
    assert subjects == {
        "events.agri": 75,
        "events.shg=2Elucknow": 75,
        "rules.aura-dev": 1,
        f"revocations.{subject_token(origin)}": 1,
        "credential.revoked": 1,
        f"checkpoints.{subject_token(origin)}": len(checkpoints),
    }
    indices = []
    for message, payload in zip(messages, payloads, strict=True):
        assert payload["iss"] == origin
        assert payload["sub"] == message["subject"]
        if payload["kind"] == "checkpoint":
            # The log key's thumbprint in the id: two platforms' never collide.
            assert message["msg_id"] == f"checkpoint:{log_key}:{payload['size']}"
            assert payload["size"] in checkpoints
            assert str(payload["note"]).startswith(origin + "\n")
            # When the platform made it, to the microsecond (what a node scores as of).
            assert payload["at"] == checkpoint_time(made[int(payload["size"])])
            assert checkpoint_at(str(payload["at"])) == made[int(payload["size"])]
            continue
        entry, event = json.loads(str(payload["entry"])), payload["event"]
        assert isinstance(event, dict)
        # The event is the one the log entry commits to, under its own id.
        assert hashlib.sha256(canonical_json(event)).hexdigest() == entry["digest"]
        assert message["msg_id"] == event["id"] == entry["id"]
        if message["stream"] == "COMMONS_EVENTS":
            indices.append(payload["index"])
    assert indices == list(range(150))  # in the log's order


CHILD = """
import os, signal, sys
from credit_commons.core.settings import Settings
from credit_commons.federation import publisher as module
from credit_commons.runtime import Runtime

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)  # acknowledged, cursor not committed

module._commit_cursor = die
rt = Runtime.build(Settings())
module.Publisher(rt, sys.argv[1], batch=1000).run_pass()
raise SystemExit("the publisher was not killed")
"""


def child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    env.update(
        COMMONS_DATA_DIR=str(settings.data_dir),
        COMMONS_DATABASE_URL=settings.resolved_database_url,
        COMMONS_ENV="test",
        COMMONS_LOG_LEVEL="ERROR",
        PYTHONPATH=str(Path(__file__).resolve().parents[3] / "src"),
    )
    return env


def test_sigkill_between_publish_and_cursor_commit_duplicates_nothing(
    runtime: Runtime, settings: Settings, nats_server: NatsServer
) -> None:
    rt = runtime
    record_reputation(rt, 200)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, nats_server.url], env=child_env(settings), check=False
    )
    assert child.returncode == -signal.SIGKILL
    # Every message reached the stream and was acknowledged; the cursor did not move.
    assert len(stream_messages(nats_server.url)) == 200
    assert cursor(rt) == 0

    publisher = Publisher(rt, nats_server.url, batch=64)
    try:
        publish_all(publisher, rt, 200)
        assert publisher.run_pass() == {}
    finally:
        publisher.close()
    assert_exactly_once(stream_messages(nats_server.url), 200 + checkpoint_count(rt))


def test_jetstream_deduplicates_a_republished_batch(
    runtime: Runtime, nats_server: NatsServer
) -> None:
    """The first line of defence alone: a publisher that does not know what the stream holds
    (its view of the stream's tail lost) republishes, and JetStream drops the copies by
    their message ids; the copies are not counted as sent, and since the stream's last
    message is still this platform's, the duplicates are taken for a republish, not for a
    shared stream."""
    rt = runtime
    record_reputation(rt, 30)
    publisher = Publisher(rt, nats_server.url, batch=100)
    try:
        publisher.run_pass()
        assert publisher._conn is not None
        publisher._conn.tails.clear()
        with transaction(rt.sessions) as session:
            row = session.get(FederationCursorRow, SPINE)
            assert row is not None
            row.position = 0
        assert publisher.run_pass() == {"federation_events": 30}
        assert publisher.state is PublisherState.UP
    finally:
        publisher.close()
    assert_exactly_once(stream_messages(nats_server.url), 30 + checkpoint_count(rt))


def test_nats_killed_and_restarted_mid_stream_loses_nothing(
    runtime: Runtime, nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    rt = runtime
    record_reputation(rt, 600)
    publisher = Publisher(rt, nats_server.url, batch=50)
    caplog.set_level(logging.INFO, logger="credit_commons.federation")
    spine_batch, batches = publisher._spine_batch, [0]

    async def batch_then_kill(conn: Any) -> tuple[int, int]:
        done = await spine_batch(conn)
        batches[0] += 1
        if batches[0] == 3:  # SIGKILL the server in the middle of a pass
            nats_server.kill()
        return done

    publisher._spine_batch = batch_then_kill  # type: ignore[method-assign]
    try:
        assert publisher.run_pass() == {}  # the fourth batch found no server
        assert publisher.state is PublisherState.DOWN
        acknowledged = cursor(rt)
        assert acknowledged == 150
        record_reputation(rt, 100, start=600)
        for _ in range(5):  # backing off: nothing published, nothing logged again
            assert publisher.run_pass() == {}
        assert cursor(rt) == acknowledged
        nats_server.start()
        # What JetStream acknowledged before its SIGKILL is still there.
        held = stream_messages(nats_server.url)
        assert {m["msg_id"] for m in held if m["stream"] == "COMMONS_EVENTS"} >= set(
            event_ids(rt)[:acknowledged]
        )
        publish_all(publisher, rt, 700)
    finally:
        publisher.close()
    messages = stream_messages(nats_server.url)
    assert_exactly_once(messages, 700 + checkpoint_count(rt))
    assert [m["msg_id"] for m in messages if m["stream"] == "COMMONS_EVENTS"] == event_ids(rt)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[0].startswith(f"federation: NATS at {nats_server.url} unavailable (")
    assert warnings[1] == f"federation: NATS at {nats_server.url} reachable again"


def event_ids(rt: Runtime) -> list[str]:
    """The sequenced events' ids, in leaf order."""
    with transaction(rt.read_sessions) as session:
        return [e for _, e, _ in ledger_service.sequenced_after(session, 0, 100_000)]


def test_no_personal_data_in_any_message(
    client: TestClient, runtime: Runtime, nats_server: NatsServer
) -> None:
    created = client.post("/v1/identities", json=PERSON)
    assert created.status_code == 201, created.text
    token, access = created.json()["identity_token"], created.json()["access_token"]
    erased = client.delete(f"/v1/identities/{token}", headers={"Authorization": f"Bearer {access}"})
    assert erased.status_code < 300, erased.text
    size = LogWorker(runtime, steps=[]).run_once(force_checkpoint=True).size
    publisher = Publisher(runtime, nats_server.url)
    try:
        publish_all(publisher, runtime, size)
    finally:
        publisher.close()
    messages = stream_messages(nats_server.url)
    subjects = {m["subject"] for m in messages}
    assert {"identity.created", "identity.erased"} <= subjects
    payloads = verified_payloads(runtime, messages)
    text = b"\n".join(m["body"] for m in messages) + json.dumps(payloads).encode()
    for secret in [*SECRET_STRINGS, token, access]:
        assert secret.encode() not in text, secret
    subject = runtime.pseudonymizer.pseudonym("identity", token)
    bus = [p for p in payloads if str(p["sub"]).startswith("identity.")]
    assert bus
    assert all(p["event"]["subject"] == subject for p in bus)


def test_the_worker_publishes_only_when_nats_is_configured(
    runtime: Runtime, nats_server: NatsServer
) -> None:
    assert federation_step(runtime) == []
    configured = replace(
        runtime,
        settings=runtime.settings.model_copy(update={"nats_url": SecretStr(nats_server.url)}),
    )
    record_reputation(runtime, 5)
    report = LogWorker(configured, steps=default_steps(configured)).run_once()
    assert report.extra["federation_events"] == 5
    assert len(stream_messages(nats_server.url)) == 5 + checkpoint_count(runtime)
