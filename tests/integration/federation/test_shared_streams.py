"""Streams shared with another platform found while connected, and a stream whose last
message was deleted (docs/federation.md, "One NATS account per platform"), on SQLite and
PostgreSQL with real NATS servers.  Two platforms that both connected to empty streams:
the one that publishes second sees the other's messages in the sequence numbers JetStream
acknowledges and refuses, its cursors unmoved; their checkpoints' message ids differ (the
log key's thumbprint), so JetStream drops neither as the other's copy.  A stream whose last
message was deleted is not taken for an empty one.  Bounded by counts, never wall time."""

from __future__ import annotations

import asyncio

import nats
from tests.integration.federation.nats_server import NatsServer, stream_messages
from tests.integration.federation.test_publish import record_reputation
from tests.integration.federation.test_shared_account import (
    cursors,
    platform_e,
    refused_metrics,
)

from credit_commons.federation import STREAMS, Publisher, PublisherState
from credit_commons.keys import KeyType, PublicKey, thumbprint
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime

__all__ = ["platform_e"]  # a fixture of this module too


def _log_key(rt: Runtime) -> str:
    return thumbprint(PublicKey.from_raw(KeyType.ED25519, log_identity(rt).public_key))


def _delete_last(url: str) -> None:
    async def delete() -> None:
        nc = await nats.connect(servers=[url], allow_reconnect=False)
        try:
            js = nc.jetstream()
            for spec in STREAMS:
                info = await js.stream_info(spec.name)
                if info.state.messages:
                    await js.delete_msg(spec.name, info.state.last_seq)
        finally:
            await nc.close()

    asyncio.run(delete())


def test_two_platforms_connected_to_empty_streams(
    runtime: Runtime, platform_e: Runtime, nats_server: NatsServer
) -> None:
    a, e = runtime, platform_e
    pa, pe = Publisher(a, nats_server.url, batch=100), Publisher(e, nats_server.url, batch=100)
    try:
        assert (pa.run_pass(), pe.run_pass()) == ({}, {})  # both checked empty streams
        assert pa.state is pe.state is PublisherState.UP
        record_reputation(a, 3)
        LogWorker(a, steps=[]).run_once(force_checkpoint=True)
        assert pa.run_pass()["federation_checkpoints"] >= 1
        record_reputation(e, 3)
        LogWorker(e, steps=[]).run_once(force_checkpoint=True)
        assert pe.run_pass() == {}
        assert pe.state is PublisherState.REFUSED
        assert {r.stream for r in pe.refusals} == {"COMMONS_EVENTS"}
        assert cursors(e) == (0, 0)  # nothing counted as published
        assert refused_metrics(e) == {'commons_federation_refused{stream="COMMONS_EVENTS"}': 1.0}
        # Federation switched off: the rows left say nothing about now.
        assert refused_metrics(e, federated=False) == {}
        record_reputation(a, 2)  # its next batch's sequences skip the other's messages
        assert pa.run_pass() == {}
        assert pa.state is PublisherState.REFUSED
    finally:
        pa.close()
        pe.close()
    ids = [m["msg_id"] for m in stream_messages(nats_server.url)]
    checkpoint_ids = [i for i in ids if str(i).startswith("checkpoint:")]
    assert checkpoint_ids
    assert all(i.startswith(f"checkpoint:{_log_key(a)}:") for i in checkpoint_ids)


def test_a_deleted_last_message_is_stepped_over(
    runtime: Runtime, platform_e: Runtime, nats_server: NatsServer
) -> None:
    a, e = runtime, platform_e
    record_reputation(a, 5)
    LogWorker(a, steps=[]).run_once(force_checkpoint=True)
    pa = Publisher(a, nats_server.url, batch=100)
    try:
        assert pa.run_pass()["federation_events"] == 5
    finally:
        pa.close()
    _delete_last(nats_server.url)
    record_reputation(e, 3)
    LogWorker(e, steps=[]).run_once(force_checkpoint=True)
    pe = Publisher(e, nats_server.url, batch=100)
    try:  # not empty: the message before the deleted one is platform a's
        assert pe.run_pass() == {}
        assert pe.state is PublisherState.REFUSED
        assert cursors(e) == (0, 0)
    finally:
        pe.close()
    pa = Publisher(a, nats_server.url, batch=100)
    try:  # platform a finds its own message there and goes on
        assert pa.run_pass() == {}
        assert pa.state is PublisherState.UP
    finally:
        pa.close()
