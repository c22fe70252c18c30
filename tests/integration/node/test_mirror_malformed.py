"""Malformed messages never raise out of a batch (SQLite and PostgreSQL): what a check
cannot read is dropped and counted, and the batch's genuine messages are stored.  A batch
that raised would be negatively acknowledged whole and delivered again forever."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.integration.node.test_mirror import _counters, _covered, _jws, _payload

from credit_commons.core.db import transaction
from credit_commons.node import mirror as mirror_module
from credit_commons.node.models import NodeMessageRow
from credit_commons.runtime import Runtime

_HEADER = {"alg": "EdDSA", "typ": "commons-federation+jws"}


def _stored(rt: Runtime) -> list[str]:
    with transaction(rt.read_sessions) as session:
        bodies = session.scalars(
            sa.select(NodeMessageRow.body).where(NodeMessageRow.stream == "COMMONS_EVENTS")
        ).all()
    return sorted(bodies)


def test_an_entry_with_a_lone_surrogate_at_a_covered_index_is_dropped(
    runtime: Runtime, client: TestClient
) -> None:
    # The payload is read leniently, so "\ud800" (escaped in the JSON) arrives as a lone
    # surrogate: it has no UTF-8 form, so it is no leaf's entry.
    rt = runtime
    mirror, drops, events = _covered(rt, client, 3)
    forged = {**_payload(events[1]), "entry": "\ud800"}
    forged_json = json.dumps(forged, sort_keys=True, separators=(",", ":")).encode()
    assert b'"\\ud800"' in forged_json
    items = [
        (events[0].body, events[0].subject),
        (_jws(_HEADER, forged_json), events[1].subject),
        *((m.body, m.subject) for m in events[1:]),
    ]
    outcomes = mirror.accept_batch("COMMONS_EVENTS", items)
    assert outcomes == ["stored", "dropped", "stored", "stored"]
    assert drops == [("COMMONS_EVENTS", "digest")]
    assert _counters(rt)["dropped.digest"] == 1
    assert _stored(rt) == sorted(m.body.decode() for m in events)


def test_an_index_beyond_64_bits_is_dropped(runtime: Runtime, client: TestClient) -> None:
    # No leaf the node could look up or store, and no database is asked about it (SQLite
    # cannot bind it, PostgreSQL's bigint cannot hold it): it is checked by its signature,
    # which the log could not have made (it signs RFC 8785 bytes, integers up to 2^53).
    rt = runtime
    mirror, drops, events = _covered(rt, client, 2)

    def forged(index: int) -> bytes:
        payload = {**_payload(events[0]), "index": index}
        return _jws(_HEADER, json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())

    items = [
        (forged(2**70), events[0].subject),
        (forged(2**63), events[0].subject),
        *((m.body, m.subject) for m in events),
    ]
    outcomes = mirror.accept_batch("COMMONS_EVENTS", items)
    assert outcomes == ["dropped", "dropped", "stored", "stored"]
    assert drops == [("COMMONS_EVENTS", "signature")] * 2
    assert _counters(rt)["dropped.signature"] == 2
    assert _stored(rt) == sorted(m.body.decode() for m in events)


def test_a_check_that_raises_value_error_drops_the_message(
    runtime: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever a check meets that it did not expect (a ValueError, UnicodeError among
    # them) is that message's drop, counted as malformed, not the batch's failure.
    rt = runtime
    mirror, drops, events = _covered(rt, client, 2)
    verify_covered = mirror_module.verify_covered
    poisoned = events[0].body

    def check(received, pins, leaf):  # type: ignore[no-untyped-def]
        if received.text.encode() == poisoned:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return verify_covered(received, pins, leaf)

    monkeypatch.setattr(mirror_module, "verify_covered", check)
    outcomes = mirror.accept_batch("COMMONS_EVENTS", [(m.body, m.subject) for m in events])
    assert outcomes == ["dropped", "stored"]
    assert drops == [("COMMONS_EVENTS", "schema")]
    assert _counters(rt)["dropped.schema"] == 1
    assert _stored(rt) == [events[1].body.decode()]
