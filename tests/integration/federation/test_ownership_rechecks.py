"""The publisher's ownership check while connected and after a refusal (docs/federation.md,
"One NATS account per platform"), on SQLite and PostgreSQL with a real NATS server: two
publishers of one platform (a rolling upgrade, ``serve`` beside ``commons worker``) never
refuse each other, a foreign message anywhere in a gap of sequences is found, a duplicate
acknowledgement re-checks the stream's last message, and a refusal stands until every
message of every stream is the platform's.  Bounded by counts (events, passes), never by
wall time."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import update
from tests.integration.federation.nats_server import NatsServer, stream_messages
from tests.integration.federation.test_publish import (
    assert_exactly_once,
    checkpoint_count,
    cursor,
    publish_all,
    record_reputation,
)
from tests.integration.federation.test_shared_account import (
    OTHER_ORIGIN,
    platform_e,
    refused_metrics,
)

from credit_commons.core.db import transaction
from credit_commons.federation import Publisher, PublisherState, publisher_refusals
from credit_commons.federation.models import FederationCursorRow
from credit_commons.federation.publisher import _READ_AT_ONCE, SPINE
from credit_commons.runtime import Runtime

__all__ = ["platform_e"]  # a fixture of this module too

E_LOG = f"messages of log {OTHER_ORIGIN!r}"
EVENTS = 'commons_federation_refused{stream="COMMONS_EVENTS"}'


def again(publisher: Publisher) -> dict[str, int]:
    publisher._next_attempt = 0.0  # no waiting out the back-off
    return publisher.run_pass()


def uncommit(rt: Runtime) -> None:
    """The spine's cursor back to 0: a crash between the acknowledgements and its commit."""
    with transaction(rt.sessions) as session:
        session.execute(
            update(FederationCursorRow).where(FederationCursorRow.name == SPINE).values(position=0)
        )


def test_two_publishers_of_one_platform_do_not_refuse_each_other(
    runtime: Runtime, nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    rt = runtime
    caplog.set_level(logging.INFO, logger="credit_commons.federation")
    p1 = Publisher(rt, nats_server.url, batch=100)
    p2 = Publisher(rt, nats_server.url, batch=100)
    try:
        assert (p1.run_pass(), p2.run_pass()) == ({}, {})  # both connected, streams empty
        record_reputation(rt, 80)
        assert p2.run_pass()["federation_events"] == 80
        record_reputation(rt, 1, start=80)
        # p1 sees a gap of 80 sequences (more than read at once), all its platform's.
        assert _READ_AT_ONCE < 80
        assert p1.run_pass()["federation_events"] == 1
        assert p1.state is PublisherState.UP
        assert p2.state is PublisherState.UP
        assert p2.run_pass() == {}
        assert p2.state is PublisherState.UP
    finally:
        p1.close()
        p2.close()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    with transaction(rt.read_sessions) as session:
        assert publisher_refusals(session) == []
    assert refused_metrics(rt) == {}
    assert cursor(rt) == 81
    assert_exactly_once(stream_messages(nats_server.url), 81 + checkpoint_count(rt))


def test_a_foreign_message_inside_a_gap_is_refused(
    runtime: Runtime, platform_e: Runtime, nats_server: NatsServer
) -> None:
    """The stream holds A's, then E's, then A's messages: the gap A's publisher sees has A's
    messages at both of its ends and E's in its middle."""
    a, e = runtime, platform_e
    p1, p2, p3, pe = (Publisher(rt, nats_server.url, batch=100) for rt in (a, a, a, e))
    try:
        assert [p.run_pass() for p in (p1, p2, p3, pe)] == [{}] * 4  # on empty streams
        record_reputation(a, 40)
        assert p2.run_pass()["federation_events"] == 40  # sequences 1-40
        record_reputation(e, 3)
        assert pe.run_pass() == {}  # 41-43, refused once its batch is in the stream
        assert pe.state is PublisherState.REFUSED
        record_reputation(a, 40, start=40)
        assert p3.run_pass() == {}  # 44-83, refused likewise: A's cursor stays at 40
        assert p3.state is PublisherState.REFUSED
        record_reputation(a, 1, start=80)
        # p1 republishes 40-79 (duplicates, the last message A's own) and publishes 80 at
        # 84: the gap 1-83 has A's messages at both ends, E's at 41-43.
        assert p1.run_pass() == {}
        assert p1.state is PublisherState.REFUSED
        assert {(r.stream, r.other) for r in p1.refusals} == {("COMMONS_EVENTS", E_LOG)}
    finally:
        for p in (p1, p2, p3, pe):
            p.close()
    assert cursor(a) == 40


def test_a_duplicate_acknowledgement_rechecks_the_last_message(
    runtime: Runtime, platform_e: Runtime, nats_server: NatsServer
) -> None:
    """A batch of nothing but duplicates shows no gap: only the check of the stream's last
    message (E's) refuses it."""
    a, e = runtime, platform_e
    p1, p2, pe = (Publisher(rt, nats_server.url, batch=100) for rt in (a, a, e))
    try:
        assert (p1.run_pass(), p2.run_pass(), pe.run_pass()) == ({}, {}, {})
        record_reputation(a, 3)
        assert p1.run_pass()["federation_events"] == 3
        record_reputation(e, 3)
        assert pe.run_pass() == {}
        assert pe.state is PublisherState.REFUSED
        uncommit(a)  # p2 republishes A's 0-2: duplicates, every one
        assert p2.run_pass() == {}
        assert p2.state is PublisherState.REFUSED
        assert {r.other for r in p2.refusals} == {E_LOG}
    finally:
        p1.close()
        p2.close()
        pe.close()
    assert cursor(a) == 0


def test_a_refusal_stands_until_every_message_is_the_platforms(
    runtime: Runtime, platform_e: Runtime, nats_server: NatsServer, tmp_path: Path
) -> None:
    """A's refused batch is in the stream before the check that refuses it, so the stream's
    last message is A's own: reconnecting must not clear the refusal (it flapped: gauge
    dropped, state up, cursor moved) while E's messages are there."""
    a, e = runtime, platform_e
    pa, pe = Publisher(a, nats_server.url, batch=100), Publisher(e, nats_server.url, batch=100)
    try:
        assert (pa.run_pass(), pe.run_pass()) == ({}, {})
        record_reputation(a, 3)
        assert pa.run_pass()["federation_events"] == 3
        record_reputation(e, 3)
        assert pe.run_pass() == {}
        record_reputation(a, 2, start=3)
        assert pa.run_pass() == {}  # E's messages in the gap; A's 3-4 now last
        for _ in range(3):
            assert again(pa) == {}
            assert pa.state is PublisherState.REFUSED
            assert refused_metrics(a) == {EVENTS: 1.0}
            assert cursor(a) == 3
        restarted = Publisher(a, nats_server.url, batch=100)  # a new process: no memory
        try:
            assert restarted.run_pass() == {}
            assert restarted.state is PublisherState.REFUSED
            assert {r.other for r in restarted.refusals} == {E_LOG}
        finally:
            restarted.close()
        assert refused_metrics(a) == {EVENTS: 1.0}
        assert cursor(a) == 3
    finally:
        pa.close()
        pe.close()
    # Pointed at a server of its own, A's streams are all its own: the refusal goes.
    own = NatsServer(tmp_path / "own-jetstream")
    own.start()
    pa = Publisher(a, own.url, batch=100)
    try:
        publish_all(pa, a, 5)
        assert pa.state is PublisherState.UP
    finally:
        pa.close()
        own.kill()
    assert refused_metrics(a) == {}
