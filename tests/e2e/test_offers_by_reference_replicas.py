"""Credential offers by reference are kept in the database: an offer created through one
replica is served by another (SQLite and PostgreSQL), until it expires."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.e2e.test_oid4vci_http import code_of, make_offer, redeem

from credit_commons.core.clock import FixedClock, SystemClock
from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer.models import CredentialOfferRow
from credit_commons.runtime import Runtime


@pytest.fixture
def replicas(
    runtime: Runtime, settings: Settings, client: TestClient
) -> Iterator[tuple[TestClient, TestClient, Runtime]]:
    """``client`` (replica A) and a second app over the same database and key file."""
    other = Runtime.build(settings, clock=FixedClock(SystemClock().now()))
    try:
        with TestClient(create_app(settings, runtime=other)) as second:
            yield client, second, other
    finally:
        other.close()


def _path(offer: dict[str, object]) -> str:
    uri = parse_qs(urlsplit(str(offer["offer_uri_by_reference"])).query)["credential_offer_uri"]
    return urlsplit(unquote(uri[0])).path


def test_offer_created_on_one_replica_is_served_by_another(
    replicas: tuple[TestClient, TestClient, Runtime], runtime: Runtime
) -> None:
    first, second, _ = replicas
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "issuer-desk")
    subject = first.post(
        "/v1/identities", json={"roles": ["business"], "profile": {"name": "Kisan Foods"}}
    ).json()["identity_token"]
    offer = make_offer(first, admin, subject).json()

    served = second.get(_path(offer))
    assert served.status_code == 200, served.text
    assert served.json() == offer["credential_offer"]
    assert served.headers["cache-control"] == "no-store"
    assert second.get(_path(offer) + "/qr.svg").status_code == 200
    # The stored offer is sealed: the pre-authorized code is not in the row in clear.
    with transaction(runtime.sessions) as session:
        row = session.scalars(select(CredentialOfferRow)).one()
        assert row.sealed_offer is not None
        assert code_of(offer).encode() not in bytes(row.sealed_offer)

    # Redeemed on the second replica: the reference is still served until the offer
    # expires, but its code is spent on every replica.
    assert redeem(second, code_of(offer), offer["tx_code"]).status_code == 200
    assert first.get(_path(offer)).json() == offer["credential_offer"]
    replay = redeem(first, code_of(offer), offer["tx_code"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"


def test_an_expired_offer_is_not_served(
    replicas: tuple[TestClient, TestClient, Runtime], runtime: Runtime
) -> None:
    first, second, other = replicas
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "issuer-desk")
    subject = first.post(
        "/v1/identities", json={"roles": ["business"], "profile": {"name": "Kisan Foods"}}
    ).json()["identity_token"]
    offer = make_offer(first, admin, subject).json()
    assert second.get(_path(offer)).status_code == 200
    clock = other.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(days=30))
    assert second.get(_path(offer)).status_code == 404
    assert second.get("/v1/credential-offers/off_01JABCDEFGHJKMNPQRSTVWXYZ0").status_code == 404
