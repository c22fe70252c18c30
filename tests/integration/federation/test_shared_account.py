"""Two platforms on one NATS account (docs/federation.md, "One NATS account per platform"),
on SQLite and PostgreSQL with real NATS servers: the second platform, whose leaf indices are
below what the shared streams hold, publishes nothing, moves no cursor and says so — an
error naming each stream and the other platform's log, ``commons_federation_refused`` on
``/metrics``; pointed at a server of its own it publishes everything from the start.
Bounded by counts (events, passes), never by wall time."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from tests.conftest import fresh_postgres_schema, make_settings, migrate
from tests.integration.federation.nats_server import NatsServer, stream_messages, verified_payloads
from tests.integration.federation.test_publish import (
    assert_exactly_once,
    checkpoint_count,
    publish_all,
    record_reputation,
)

from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.federation import Publisher, PublisherState, publisher_refusals
from credit_commons.federation.publisher import CHECKPOINTS, SPINE, read_cursor
from credit_commons.gateway.app import create_app
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime

OTHER_ORIGIN = "platform-e.example/log"


@pytest.fixture
def platform_e(settings: Settings, tmp_path: Path) -> Iterator[Runtime]:
    """A second platform on the same backend as ``runtime``, with a database, data
    directory and log of its own."""
    with contextlib.ExitStack() as stack:
        if settings.resolved_database_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / 'e.db'}"
        else:
            url = stack.enter_context(fresh_postgres_schema())
        rt = Runtime.build(make_settings(tmp_path / "e", database_url=url, log_origin=OTHER_ORIGIN))
        migrate(rt.engine)
        stack.callback(rt.close)
        yield rt


def cursors(rt: Runtime) -> tuple[int, int]:
    with transaction(rt.read_sessions) as session:
        return read_cursor(session, SPINE), read_cursor(session, CHECKPOINTS)


def refused_metrics(rt: Runtime, *, federated: bool = True) -> dict[str, float]:
    """``/metrics``' refusal gauges, served by ``rt`` configured with a NATS URL (the
    publisher's own address does not matter to them) or, ``federated=False``, without."""
    if federated:
        url = SecretStr("nats://127.0.0.1:4222")
        rt = dataclasses.replace(rt, settings=rt.settings.model_copy(update={"nats_url": url}))
    with TestClient(create_app(rt.settings, runtime=rt)) as client:
        text = client.get("/metrics").text
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("commons_federation_refused{")
    }


def test_a_second_platform_on_a_shared_account_publishes_nothing_and_says_so(
    runtime: Runtime,
    platform_e: Runtime,
    nats_server: NatsServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, e = runtime, platform_e
    record_reputation(a, 8)
    a_size = LogWorker(a, steps=[]).run_once(force_checkpoint=True).size
    publisher_a = Publisher(a, nats_server.url, batch=100)
    try:
        publish_all(publisher_a, a, a_size)
    finally:
        publisher_a.close()
    held = stream_messages(nats_server.url)
    assert_exactly_once(held, 8 + checkpoint_count(a))

    # E's leaf indices (0-2) are below A's (0-7): the skip by index would have dropped them.
    record_reputation(e, 3)
    e_size = LogWorker(e, steps=[]).run_once(force_checkpoint=True).size
    assert e_size == 3
    caplog.set_level(logging.INFO, logger="credit_commons.federation")
    publisher_e = Publisher(e, nats_server.url, batch=100)
    try:
        for _ in range(3):
            publisher_e._next_attempt = 0.0  # no waiting out the back-off
            assert publisher_e.run_pass() == {}
            assert publisher_e.state is PublisherState.REFUSED
    finally:
        publisher_e.close()
    # Nothing of E's reached the streams, and its cursors did not move.
    assert stream_messages(nats_server.url) == held
    assert cursors(e) == (0, 0)
    # Said once, as an error naming the server, each stream and A's log.
    a_origin = log_identity(a).origin
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith(f"federation: NATS at {nats_server.url}: not publishing: ")
    assert f"COMMONS_EVENTS holds messages of log {a_origin!r}" in errors[0]
    assert f"COMMONS_CHECKPOINTS holds messages of log {a_origin!r}" in errors[0]
    assert "NATS account" in errors[0]
    with transaction(e.read_sessions) as session:
        refusals = publisher_refusals(session)
    assert {r.stream for r in refusals} == {"COMMONS_EVENTS", "COMMONS_CHECKPOINTS"}
    assert {r.other for r in refusals} == {f"messages of log {a_origin!r}"}
    assert refused_metrics(e) == {
        'commons_federation_refused{stream="COMMONS_CHECKPOINTS"}': 1.0,
        'commons_federation_refused{stream="COMMONS_EVENTS"}': 1.0,
    }
    assert refused_metrics(a) == {}

    # Pointed at a server of its own, E publishes everything from its first event.
    own = NatsServer(tmp_path / "own-jetstream")
    own.start()
    publisher_e = Publisher(e, own.url, batch=100)
    try:
        publish_all(publisher_e, e, e_size)
        assert publisher_e.state is PublisherState.UP
        messages = stream_messages(own.url)
    finally:
        publisher_e.close()
        own.kill()
    assert_exactly_once(messages, 3 + checkpoint_count(e))
    payloads = verified_payloads(e, messages)
    assert {p["iss"] for p in payloads} == {OTHER_ORIGIN}
    assert sorted(p["index"] for p in payloads if p["kind"] == "event") == [0, 1, 2]
    with transaction(e.read_sessions) as session:
        assert publisher_refusals(session) == []
    assert refused_metrics(e) == {}
