"""Fixtures shared by the OpenID4VP verifier tests: a platform with a fixed clock, a lender
that makes presentation requests, a holder with a credential of this platform, and a wallet
side built from the platform's OpenID4VP formats (``formats/oid4vp.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import GENEROUS_RATE_LIMITS, make_settings, migrate
from tests.factories import readiness_claims

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.demo import lender_token
from credit_commons.events import EventRow
from credit_commons.formats import oid4vp
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.gateway.app import create_app
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer.catalogue import CREDIT_READINESS
from credit_commons.issuer.sd_jwt import present
from credit_commons.keys import method_key
from credit_commons.keys.algorithms import KeyType, PrivateKey, PublicKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime

BASE = "https://commons.test"
CRC = CREDIT_READINESS.name


def crc_query(*claims: str, query_id: str = "crc") -> dict[str, Any]:
    """A DCQL query for this platform's Credit Readiness Credential and ``claims``."""
    return {
        "credentials": [
            {
                "id": query_id,
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [CREDIT_READINESS.vct]},
                "claims": [{"path": [c]} for c in claims or ("income_bracket",)],
            }
        ]
    }


class Holder:
    """A borrower holding a credential of this platform, with its holder key."""

    def __init__(self, token: str, credential_id: str, credential: str, key: PrivateKey) -> None:
        self.token, self.credential_id, self.credential, self.key = (
            token,
            credential_id,
            credential,
            key,
        )


class VpWorld:
    """A platform with a fixed clock, a lender (the verifier) and a wallet side."""

    def __init__(self, rt: Runtime, http: TestClient, clock: FixedClock) -> None:
        self.rt, self.http, self.clock = rt, http, clock
        with transaction(rt.sessions) as session:
            admin, _ = issue_admin_token(session, rt, "desk")
        self.admin = {"Authorization": f"Bearer {admin}"}
        self.lender_key = PrivateKey.generate(KeyType.ED25519)
        made = http.post(
            "/v1/admin/lenders",
            json={
                "name": "Verifier Bank",
                "jwks": {"keys": [public_key_to_jwk(self.lender_key.public_key)]},
                "allowed_purposes": ["loan.underwriting"],
            },
            headers=self.admin,
        )
        assert made.status_code == 201, made.text
        self.lender = str(made.json()["client_id"])

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def token(self) -> dict[str, str]:
        value = lender_token(self.http, BASE, self.lender, self.lender_key, now=self.now())
        return {"Authorization": f"Bearer {value}"}

    def holder(self, **claims: Any) -> Holder:
        """A new borrower with a Credit Readiness Credential bound to a fresh holder key."""
        made = self.http.post(
            "/v1/identities", json={"roles": ["business"], "profile": {"name": "M"}}
        )
        assert made.status_code == 201, made.text
        token = made.json()["identity_token"]
        key = PrivateKey.generate(KeyType.ED25519)
        issued = self.http.post(
            "/v1/credentials",
            json={
                "type": CRC,
                "subject": token,
                "claims": readiness_claims(token, **claims),
                "holder_jwk": public_key_to_jwk(key.public_key),
            },
            headers=self.admin,
        )
        assert issued.status_code == 201, issued.text
        body = issued.json()
        return Holder(token, body["credential_id"], body["credential"], key)

    # -- the verifier --------------------------------------------------------------------

    def request(self, **body: Any) -> dict[str, Any]:
        """Make a presentation request (defaults: the CRC query, did:web, direct_post)."""
        body.setdefault("dcql_query", crc_query())
        body.setdefault("redirect_uri", "https://lender.example/done")
        made = self.http.post("/v1/verifier/requests", json=body, headers=self.token())
        assert made.status_code == 201, made.text
        return dict(made.json())

    def status(self, transaction_id: str) -> dict[str, Any]:
        got = self.http.get(f"/v1/verifier/requests/{transaction_id}", headers=self.token())
        assert got.status_code == 200, got.text
        return dict(got.json())

    def decision(self, transaction_id: str, response_code: str) -> httpx.Response:
        return self.http.post(
            f"/v1/verifier/requests/{transaction_id}/decision",
            json={"response_code": response_code},
            headers=self.token(),
        )

    def events(self, event_type: str = "verification.decided") -> list[dict[str, Any]]:
        with transaction(self.rt.sessions) as session:
            rows = session.scalars(
                select(EventRow).where(EventRow.type == event_type).order_by(EventRow.id)
            ).all()
            return [dict(json.loads(r.details)) for r in rows]

    # -- the wallet ----------------------------------------------------------------------

    def did_key(self, kid: str) -> PublicKey:
        """The key a kid of the platform's did:web names, from its DID document."""
        document = self.http.get("/.well-known/did.json").json()
        did, _, fragment = kid.partition("#")
        return method_key(document, did, fragment)

    def wallet_request(self, created: dict[str, Any]) -> oid4vp.AuthorizationRequest:
        """What a wallet reads: the request by value, or the signed request object fetched
        from ``request_uri`` and verified with the key of the platform's did:web."""
        if created["request"] is not None:
            return oid4vp.parse_authorization_request(created["request"], signed=False)
        path = created["request_uri"].removeprefix(BASE)
        fetched = self.http.get(path)
        assert fetched.status_code == 200, fetched.text
        assert fetched.headers["content-type"].startswith("application/oauth-authz-req+jwt")
        return oid4vp.read_request_object(
            fetched.text, self.did_key, client_id=created["client_id"]
        )

    def presentation(
        self,
        holder: Holder,
        request: oid4vp.AuthorizationRequest,
        *,
        disclose: tuple[str, ...] = ("/income_bracket",),
        nonce: str | None = None,
        audience: str | None = None,
        key: PrivateKey | None = None,
    ) -> str:
        """The holder's presentation for ``request`` (KB-JWT to its nonce and client id)."""
        return present(
            SdJwt.parse(holder.credential),
            disclose=set(disclose),
            holder_signer=key or holder.key,
            audience=audience or request.client_id,
            nonce=nonce or request.nonce,
            iat=self.now(),
        )

    def respond(
        self,
        created: dict[str, Any],
        request: oid4vp.AuthorizationRequest,
        vp_token: dict[str, list[str]] | None,
        *,
        state: str | None = None,
        form: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Post the response to the request's response_uri (encrypted for direct_post.jwt)."""
        if form is None:
            members: dict[str, Any] = {"vp_token": vp_token, "state": state or request.state}
            if request.response_mode == "direct_post.jwt":
                assert request.client_metadata is not None
                jwk = oid4vp.select_encryption_key(request.client_metadata)
                form = {"response": oid4vp.encrypt_response(members, jwk, "A128GCM")}
            else:
                form = {"vp_token": json.dumps(vp_token), "state": members["state"]}
        return self.http.post(request.response_uri.removeprefix(BASE), data=form)


@pytest.fixture
def vp(tmp_path: Path, backend_url: str) -> Iterator[VpWorld]:
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    settings = make_settings(
        tmp_path, database_url=backend_url, public_url=BASE, rate_limits=GENEROUS_RATE_LIMITS
    )
    rt = Runtime.build(settings, clock=clock)
    migrate(rt.engine)
    with TestClient(create_app(settings, runtime=rt), base_url=BASE) as http:
        yield VpWorld(rt, http, clock)
    rt.close()
