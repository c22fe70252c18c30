"""Fixtures shared by the consent tests: a platform with a fixed clock, a borrower holding a
credential, and two registered lenders."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import GENEROUS_RATE_LIMITS, make_settings, migrate
from tests.factories import readiness_claims

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.demo import lender_token
from credit_commons.events import EventRow
from credit_commons.gateway.app import create_app
from credit_commons.identity.auth import issue_admin_token
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime

BASE = "https://commons.test"
CRC = "CreditReadinessCredential"


class World:
    """A platform with a fixed clock, a borrower holding a credential, two lenders."""

    def __init__(self, rt: Runtime, http: TestClient, clock: FixedClock) -> None:
        self.rt, self.http, self.clock = rt, http, clock
        self.counted: dict[str, int] = {}  # refusals counted, not logged, by reason
        with transaction(rt.sessions) as session:
            admin, _ = issue_admin_token(session, rt, "desk")
        self.admin = {"Authorization": f"Bearer {admin}"}
        made = http.post("/v1/identities", json={"roles": ["business"], "profile": {"name": "M"}})
        self.borrower = made.json()["identity_token"]
        self.as_borrower = {"Authorization": f"Bearer {made.json()['access_token']}"}
        holder = PrivateKey.generate(KeyType.ED25519)
        issued = http.post(
            "/v1/credentials",
            json={
                "type": CRC,
                "subject": self.borrower,
                "claims": readiness_claims(self.borrower),
                "holder_jwk": public_key_to_jwk(holder.public_key),
            },
            headers=self.admin,
        )
        assert issued.status_code == 201, issued.text
        self.credential_id = str(issued.json()["credential_id"])
        self.key, self.other_key = (PrivateKey.generate(KeyType.ED25519) for _ in range(2))
        self.lender = self.register("Lender One", self.key)
        self.other = self.register("Lender Two", self.other_key)

    def register(self, name: str, key: PrivateKey) -> str:
        made = self.http.post(
            "/v1/admin/lenders",
            json={
                "name": name,
                "jwks": {"keys": [public_key_to_jwk(key.public_key)]},
                "allowed_purposes": ["104", "105", "loan.underwriting", "loan.monitoring"],
            },
            headers=self.admin,
        )
        assert made.status_code == 201, made.text
        return str(made.json()["client_id"])

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def token(self, client_id: str | None = None, **kw: Any) -> dict[str, str]:
        client_id = client_id or self.lender
        key = self.key if client_id == self.lender else self.other_key
        value = lender_token(self.http, BASE, client_id, key, now=self.now(), **kw)
        return {"Authorization": f"Bearer {value}"}

    def consent(self, approve: bool = True, **overrides: Any) -> str:
        body: dict[str, Any] = {
            "template": "loan_underwriting",
            "borrower": self.borrower,
            "purpose": "105",
            "consent_expiry": (self.clock.now() + timedelta(days=7)).isoformat(),
            "scopes": [{"type": CRC, "claims": ["/income_bracket"]}],
        }
        body.update(overrides)
        made = self.http.post("/v1/consents", json=body, headers=self.token())
        assert made.status_code == 201, made.text
        consent_id = str(made.json()["consent_id"])
        if approve:
            self.decide(consent_id, "approve")
        return consent_id

    def decide(self, consent_id: str, action: str) -> dict[str, Any]:
        done = self.http.post(
            f"/v1/borrowers/consents/{consent_id}/{action}", headers=self.as_borrower
        )
        assert done.status_code == 200, done.text
        return dict(done.json())

    def fetch(self, consent_id: str, headers: dict[str, str] | None = None, **params: str) -> Any:
        return self.http.get(
            "/v1/lender/credentials",
            params={"consent_id": consent_id, **params},
            headers=headers if headers is not None else self.token(),
        )

    def last_denial(self) -> EventRow:
        with transaction(self.rt.sessions) as session:
            row = session.scalars(
                select(EventRow)
                .where(EventRow.type == "access.denied")
                .order_by(EventRow.id.desc())
            ).first()
            assert row is not None
            session.expunge(row)
            return row


@pytest.fixture
def world(tmp_path: Path, backend_url: str) -> Iterator[World]:
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    # One address and a credential per party drive every test's traffic: far above the
    # default per-group limits (the consent-authority matrix alone makes hundreds of calls).
    settings = make_settings(
        tmp_path, database_url=backend_url, public_url=BASE, rate_limits=GENEROUS_RATE_LIMITS
    )
    rt = Runtime.build(settings, clock=clock)
    migrate(rt.engine)
    with TestClient(create_app(settings, runtime=rt), base_url=BASE) as http:
        yield World(rt, http, clock)
