"""Signed webhooks to lenders on every consent change: queued with the change, delivered
by the worker with retries and backoff, given up after eight failures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tests.conftest import make_settings, migrate

from credit_commons.consent import artefacts, decisions, webhooks
from credit_commons.consent import requests as consent_requests
from credit_commons.consent.model import ConsentRequest
from credit_commons.consent.models import WebhookDeliveryRow
from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.jws import JwsInvalid, verify_compact
from credit_commons.identity import service as identity_service
from credit_commons.identity.auth import Principal
from credit_commons.identity.schemas import IdentityCreate
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType, PrivateKey
from credit_commons.keys.errors import SignatureInvalid
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.lenders import register_client
from credit_commons.runtime import Runtime

ADMIN = Principal("admin:test", "admin")
HOOK = "https://lender.example/hooks"


class Lender:
    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.purposes = frozenset({"105"})


@pytest.fixture
def rt(tmp_path: Path, backend_url: str) -> Iterator[Runtime]:
    clock = FixedClock(datetime.now(UTC))
    runtime = Runtime.build(make_settings(tmp_path, database_url=backend_url), clock=clock)
    migrate(runtime.engine)
    try:
        yield runtime
    finally:
        runtime.close()


def _fetcher(answers: list[int], seen: list[httpx.Request]) -> OutboundFetcher:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answers.pop(0) if answers else 204)

    # lender.example "resolves" to a public address: no DNS, no network.
    return OutboundFetcher(
        transport=httpx.MockTransport(handler), resolver=lambda _host: ["93.184.216.34"]
    )


def _setup(rt: Runtime) -> tuple[Lender, str]:
    key = PrivateKey.generate(KeyType.ED25519)
    with transaction(rt.sessions) as session:
        client = register_client(
            session,
            rt,
            ADMIN,
            name="Hooked Bank",
            jwks={"keys": [public_key_to_jwk(key.public_key)]},
            allowed_purposes=["105"],
            webhook_url=HOOK,
        )
        body = IdentityCreate.model_validate({"roles": ["business"], "profile": {"name": "B"}})
        token = identity_service.create_identity(session, rt, body).identity_token
    lender = Lender(client.client_id)
    with transaction(rt.sessions) as session:
        made = consent_requests.request_consent(
            session,
            rt,
            lender,
            ConsentRequest.model_validate(
                {
                    "template": "loan_underwriting",
                    "borrower": token,
                    "purpose": "105",
                    "consent_expiry": (rt.clock.now() + timedelta(days=3)).isoformat(),
                    "scopes": [{"type": "CreditReadinessCredential", "claims": []}],
                }
            ),
        )
    with transaction(rt.sessions) as session:
        decisions.decide(session, rt, Principal(token, "identity"), made.consent_id, "approve")
    return lender, made.consent_id


def test_changes_are_delivered_signed_with_retries(rt: Runtime) -> None:
    _lender, consent_id = _setup(rt)
    seen: list[httpx.Request] = []
    fetcher = _fetcher([500, 204], seen)
    first = webhooks.deliver_due(rt, fetcher=fetcher)
    assert first == {"delivered": 1, "retry": 1, "dead": 0}
    assert webhooks.deliver_due(rt, fetcher=fetcher) == {"delivered": 0, "retry": 0, "dead": 0}
    rt.clock.advance(timedelta(seconds=30))  # type: ignore[attr-defined]
    assert webhooks.deliver_due(rt, fetcher=fetcher)["delivered"] == 1
    assert [str(r.url) for r in seen] == [HOOK] * 3
    assert {r.headers["content-type"] for r in seen} == {"application/jwt"}
    with transaction(rt.sessions) as session:
        key = artefacts.consent_key_versions(session, rt)[0].public_key
    statuses = sorted(
        verify_compact(r.content.decode(), key, typ=webhooks.WEBHOOK_TYP, algs=ACCEPTED_ALGS)[
            "status"
        ]
        for r in seen
    )
    assert statuses == ["ACTIVE", "PENDING", "PENDING"]  # the failed one was sent again
    payload = verify_compact(
        seen[-1].content.decode(), key, typ=webhooks.WEBHOOK_TYP, algs=ACCEPTED_ALGS
    )
    assert payload["consent_id"] == consent_id
    head, body, signature = seen[-1].content.decode().split(".")
    middle = len(body) // 2
    flipped = body[:middle] + ("A" if body[middle] != "A" else "B") + body[middle + 1 :]
    tampered = f"{head}.{flipped}.{signature}"
    with pytest.raises((SignatureInvalid, JwsInvalid)):
        verify_compact(tampered, key, typ=webhooks.WEBHOOK_TYP, algs=ACCEPTED_ALGS)


def test_a_delivery_is_given_up_after_eight_failures(rt: Runtime) -> None:
    _setup(rt)
    seen: list[httpx.Request] = []
    fetcher = _fetcher([500] * 100, seen)
    for _ in range(webhooks.MAX_ATTEMPTS):
        webhooks.deliver_due(rt, fetcher=fetcher)
        rt.clock.advance(timedelta(hours=2))  # type: ignore[attr-defined]
    with transaction(rt.sessions) as session:
        states = sorted(d.state for d in session.query(WebhookDeliveryRow))
    assert states == ["DEAD", "DEAD"]
    assert len(seen) == 2 * webhooks.MAX_ATTEMPTS


def test_private_addresses_are_refused_at_send_time(rt: Runtime) -> None:
    _setup(rt)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    rebound = OutboundFetcher(
        transport=httpx.MockTransport(handler), resolver=lambda _host: ["10.0.0.7"]
    )
    assert webhooks.deliver_due(rt, fetcher=rebound)["retry"] == 2
    assert seen == []
