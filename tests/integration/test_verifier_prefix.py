"""Which client identifier prefix a presentation request is made with (verifier/service.py,
``client_id_prefix``; docs/verifier.md), on SQLite and PostgreSQL: ``decentralized_identifier``
needs the platform's did:web, which a public URL on http or at an IP address cannot carry
(did:web §3.1, §3.2), so there it is refused when the request is made, and the default is
``redirect_uri``; on an https domain the default stays ``decentralized_identifier``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.conftest import GENEROUS_RATE_LIMITS, make_settings, migrate
from tests.integration.verifier_world import crc_query

from credit_commons.core.db import transaction
from credit_commons.demo import lender_token
from credit_commons.gateway.app import create_app
from credit_commons.identity.auth import issue_admin_token
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime


class Verifier:
    def __init__(self, http: TestClient, base: str, headers: dict[str, str]) -> None:
        self.http, self.base, self.headers = http, base, headers

    def request(self, **body: object) -> tuple[int, dict[str, object]]:
        made = self.http.post(
            "/v1/verifier/requests",
            json={
                "dcql_query": crc_query(),
                "redirect_uri": "https://lender.example/done",
                **body,
            },
            headers=self.headers,
        )
        return made.status_code, dict(made.json())


@pytest.fixture
def verifier_at(
    tmp_path: Path, backend_url: str, request: pytest.FixtureRequest
) -> Iterator[Verifier]:
    base = str(request.param)
    settings = make_settings(
        tmp_path, database_url=backend_url, public_url=base, rate_limits=GENEROUS_RATE_LIMITS
    )
    rt = Runtime.build(settings)
    migrate(rt.engine)
    with TestClient(create_app(settings, runtime=rt), base_url=base) as http:
        with transaction(rt.sessions) as session:
            admin, _ = issue_admin_token(session, rt, "desk")
        key = PrivateKey.generate(KeyType.ED25519)
        made = http.post(
            "/v1/admin/lenders",
            json={
                "name": "Verifier Bank",
                "jwks": {"keys": [public_key_to_jwk(key.public_key)]},
                "allowed_purposes": ["loan.underwriting"],
            },
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert made.status_code == 201, made.text
        token = lender_token(http, base, str(made.json()["client_id"]), key)
        yield Verifier(http, base, {"Authorization": f"Bearer {token}"})
    rt.close()


@pytest.mark.parametrize(
    ("verifier_at", "why"),
    [
        ("http://127.0.0.1:8300", "not https"),  # make run's platform
        ("http://localhost:8300", "not https"),
        ("https://127.0.0.1:8443", "IP address"),
    ],
    indirect=["verifier_at"],
)
def test_without_a_did_web_the_did_prefix_is_refused_and_redirect_uri_is_the_default(
    verifier_at: Verifier, why: str
) -> None:
    status, refused = verifier_at.request(client_id_prefix="decentralized_identifier")
    assert status == 422, refused
    assert refused["code"] == "verifier.prefix_unavailable"
    detail = str(refused["detail"])
    assert why in detail
    assert verifier_at.base in detail
    assert "use redirect_uri" in detail
    assert "https URL with a domain name" in detail
    assert refused["errors"] == [
        {"field": "client_id_prefix", "message": refused["errors"][0]["message"]}  # type: ignore[index]
    ]
    status, made = verifier_at.request()  # the default: what this platform can serve
    assert status == 201, made
    assert str(made["client_id"]).startswith("redirect_uri:")
    assert made["request_uri"] is None
    status, made = verifier_at.request(client_id_prefix="redirect_uri")
    assert status == 201, made


@pytest.mark.parametrize("verifier_at", ["https://commons.test"], indirect=True)
def test_on_an_https_domain_the_did_prefix_is_the_default(verifier_at: Verifier) -> None:
    status, made = verifier_at.request()
    assert status == 201, made
    assert made["client_id"] == "decentralized_identifier:did:web:commons.test"
    assert str(made["request_uri"]).startswith("https://commons.test/v1/verifier/requests/")
