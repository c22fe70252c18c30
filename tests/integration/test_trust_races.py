"""Values that only rise stay risen under concurrency, on both databases: a policy floor
written after another administrator's higher one, and a pinned bundle's version refreshed
after a concurrent refresh accepted a newer one (review 2, item 6)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.conftest import migrate

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.errors import ConflictError
from credit_commons.core.net import OutboundFetcher
from credit_commons.core.settings import Settings
from credit_commons.events import EventRow
from credit_commons.identity import Principal
from credit_commons.keys import KeyType, PrivateKey, public_key_to_jwk
from credit_commons.runtime import Runtime
from credit_commons.verifier import policy_service, trust_pins
from credit_commons.verifier.trust_bundle import TrustBundle, TrustEntry, sign_bundle

ADMIN = Principal("ops", "admin")
NOW = datetime(2026, 6, 1, tzinfo=UTC)
URL = "https://other.example/.well-known/trust-bundle"
POLICY: dict[str, Any] = {
    "id": "income",
    "version": 1,
    "rule": {"rule": "predicate", "path": ["income"], "op": "gte", "value": 1000},
}


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.build(settings, clock=FixedClock(NOW))
    migrate(runtime.engine)
    try:
        yield runtime
    finally:
        runtime.close()


def _policy_with_versions(rt: Runtime, count: int) -> None:
    with transaction(rt.sessions) as session:
        policy_service.create_policy(session, rt, ADMIN, owner="platform", document=POLICY)
        for version in range(2, count + 1):
            policy_service.add_policy_version(
                session,
                rt,
                ADMIN,
                owner="platform",
                policy_id="income",
                document={**POLICY, "version": version},
            )


def test_a_floor_read_before_a_concurrent_raise_cannot_lower_it(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    _policy_with_versions(rt, 5)
    with transaction(rt.sessions) as session:
        policy_service.set_policy_floor(
            session, rt, ADMIN, owner="platform", policy_id="income", floor=2
        )
    # Another administrator raises the floor to 5 ...
    with transaction(rt.sessions) as session:
        policy_service.set_policy_floor(
            session, rt, ADMIN, owner="platform", policy_id="income", floor=5
        )
    # ... after this one read it as 2 (the read is made stale; the write must not trust it).
    real_floor = policy_service._floor
    reads: list[int] = []

    def stale_first(session: Any, owner: str, policy_id: str) -> int:
        reads.append(1)
        return 2 if len(reads) == 1 else real_floor(session, owner, policy_id)

    monkeypatch.setattr(policy_service, "_floor", stale_first)
    with pytest.raises(ConflictError), transaction(rt.sessions) as session:
        policy_service.set_policy_floor(
            session, rt, ADMIN, owner="platform", policy_id="income", floor=3
        )
    monkeypatch.undo()
    with transaction(rt.sessions) as session:
        assert policy_service.load_policy(session, "platform", "income").floor == 5
        # A real raise still works, and an equal floor is no change.
        view = policy_service.set_policy_floor(
            session, rt, ADMIN, owner="platform", policy_id="income", floor=5
        )
        assert view.floor == 5


class OtherPlatform:
    """Another platform's well-known bundle, served by a fake transport."""

    def __init__(self) -> None:
        self.key = PrivateKey.generate(KeyType.P256)
        self.token = ""

    def publish(self, version: int, iss: str = "https://other.example") -> None:
        iat = int(NOW.timestamp())
        entries = (TrustEntry("did:web:far.example", "did:web"),)
        bundle = TrustBundle(iss, version, iat, iat + 86400, entries)
        self.token = sign_bundle(bundle, self.key, "k")

    def handler(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) != URL:
            return httpx.Response(404)
        return httpx.Response(200, text=self.token)


@pytest.fixture
def other(rt: Runtime) -> OtherPlatform:
    platform = OtherPlatform()
    transport = httpx.MockTransport(platform.handler)
    fetcher = OutboundFetcher(transport=transport, resolver=lambda _h: ["93.184.216.34"])
    trust_pins.TRUST_FETCHER.set(rt, fetcher)
    return platform


def _pin(rt: Runtime, other: OtherPlatform, version: int) -> None:
    other.publish(version)
    trust_pins.pin_bundle(rt, ADMIN, URL, json.dumps(public_key_to_jwk(other.key.public_key)))


def _kept(rt: Runtime) -> tuple[int, str | None]:
    with transaction(rt.sessions) as session:
        pin = trust_pins.list_pins(session, rt, ADMIN)[0]
        return pin.version, pin.iss


def test_a_refresh_cannot_replace_a_newer_bundle_kept_meanwhile(
    rt: Runtime, other: OtherPlatform
) -> None:
    _pin(rt, other, 3)
    # One refresh reads the pin (version 3) and fetches version 4 ...
    with transaction(rt.read_sessions) as session:
        targets = trust_pins.pin_targets(session, rt, ADMIN)
    other.publish(4)
    slow = [trust_pins.fetch_pin(rt, t) for t in targets]
    assert [(f.version, f.refusal) for f in slow] == [(4, None)]
    # ... while another one keeps version 5.
    other.publish(5)
    assert [o.version for o in trust_pins.refresh_pins(rt, ADMIN)] == [5]
    # The slow one's version 4 must not replace 5: it is refused as a rollback.
    with transaction(rt.sessions) as session:
        outcomes = trust_pins.record_refreshes(session, rt, ADMIN, slow)
    assert [(o.accepted, o.reason) for o in outcomes] == [(False, "rollback")]
    assert _kept(rt) == (5, "https://other.example")
    # A refresh of a pin removed meanwhile records nothing.
    with transaction(rt.sessions) as session:
        trust_pins.unpin_bundle(session, rt, ADMIN, URL)
        assert trust_pins.record_refreshes(session, rt, ADMIN, slow) == []


def test_a_refreshed_bundle_must_name_the_pinned_issuer(rt: Runtime, other: OtherPlatform) -> None:
    _pin(rt, other, 3)
    # The same key signs a bundle of another issuer: the pin is of https://other.example.
    other.publish(4, iss="https://third.example")
    outcome = trust_pins.refresh_pins(rt, ADMIN)[0]
    assert (outcome.accepted, outcome.reason, outcome.version) == (False, "invalid", 3)
    assert _kept(rt) == (3, "https://other.example")
    other.publish(4)
    assert trust_pins.refresh_pins(rt, ADMIN)[0].accepted
    with transaction(rt.sessions) as session:
        events = session.scalars(select(EventRow.type).where(EventRow.type.like("trust.pin%")))
        assert sorted(events) == ["trust.pin_refreshed", "trust.pin_refused", "trust.pinned"]


def test_pins_are_fetched_outside_any_write_transaction(rt: Runtime, other: OtherPlatform) -> None:
    # While another platform's bundle is fetched, a writer must be able to commit: on
    # SQLite a write transaction held across the fetch would hold the database's one write
    # lock for as long as the other platform takes to answer.
    in_time: list[bool] = []

    def write() -> None:
        with transaction(rt.sessions) as session:
            document = {**POLICY, "id": f"meanwhile-{len(in_time)}"}
            policy_service.create_policy(session, rt, ADMIN, owner="platform", document=document)

    def slow_platform(request: httpx.Request) -> httpx.Response:
        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=5)
        in_time.append(not writer.is_alive())
        return other.handler(request)

    fetcher = OutboundFetcher(
        transport=httpx.MockTransport(slow_platform), resolver=lambda _h: ["93.184.216.34"]
    )
    trust_pins.TRUST_FETCHER.set(rt, fetcher)
    _pin(rt, other, 3)
    other.publish(4)
    assert [o.version for o in trust_pins.refresh_pins(rt, ADMIN)] == [4]
    assert in_time == [True, True]
    with transaction(rt.sessions) as session:
        assert len(policy_service.list_policies(session, rt, ADMIN)) == 2
