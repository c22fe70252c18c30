"""The trust bundle and policies over HTTP (SQLite and PostgreSQL): the well-known bundle,
entries with marks, types and X.509 anchors, and a verifier platform pinning another
platform's bundle by key — both platforms real apps in process, the second fetching the
first's well-known URL through its SSRF-guarded fetcher (a transport that hands the request
to the first app)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import make_settings, migrate
from tests.e2e.test_credential_verify_sd_jwt import Issued
from tests.unit.verifier.x509_support import chain

from credit_commons.core.db import transaction
from credit_commons.core.net import OutboundFetcher
from credit_commons.events import EventRow
from credit_commons.gateway.app import create_app
from credit_commons.identity.auth import issue_admin_token
from credit_commons.keys import decode_did_key
from credit_commons.runtime import Runtime
from credit_commons.verifier import trust_pins, trust_registry
from credit_commons.verifier.foreign import FOREIGN_ISSUERS, ForeignIssuers
from credit_commons.verifier.trust_bundle import (
    IssuerNotTrusted,
    TrustBundleSignatureInvalid,
    verify_bundle,
)

VCT = "https://coop.example/vct/membership/v1"
A_URL = "https://a.example"
BUNDLE_URL = f"{A_URL}/.well-known/trust-bundle"


def _admin(runtime: Runtime) -> dict[str, str]:
    with transaction(runtime.sessions) as session:
        token, _ = issue_admin_token(session, runtime, "trust-desk")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def platform_a(tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    """Another platform (SQLite), whose bundle the platform under test pins."""
    settings = make_settings(
        tmp_path / "a",
        database_url=f"sqlite:///{tmp_path / 'a.db'}",
        public_url=A_URL,
    )
    runtime = Runtime.build(settings)
    migrate(runtime.engine)
    try:
        with TestClient(create_app(settings, runtime=runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


class Relay:
    """The network between the platforms: hands each request to platform A's app, or an
    answer recorded earlier (to replay an old bundle)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.replay: str | None = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.replay is not None:
            return httpx.Response(
                200, text=self.replay, headers={"Content-Type": "application/trust-bundle+jwt"}
            )
        answer = self.client.get(request.url.path, headers={"Accept": request.headers["Accept"]})
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)


def test_the_well_known_bundle_and_its_entries(client: TestClient, runtime: Runtime) -> None:
    as_admin = _admin(runtime)
    # Without entries the bundle is version 1, empty, and signed.
    first = client.get("/.well-known/trust-bundle")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/trust-bundle+jwt"
    view = client.get("/v1/admin/trust-bundle", headers=as_admin).json()
    key = decode_did_key(view["did"])
    assert verify_bundle(first.text, key, now=runtime.clock.now()).entries == ()
    assert client.get("/v1/admin/trust-bundle").status_code in (401, 404)

    # Entries through the new route (marks, types, an X.509 anchor) and the old one.
    root, _intermediate, _leaf = chain("bank.example")
    answers = [
        client.post(
            "/v1/admin/trust-bundle/entries",
            json={"issuer": "did:web:coop.example", "marks": ["shg-federation"], "types": [VCT]},
            headers=as_admin,
        ),
        client.post(
            "/v1/admin/trust-bundle/entries",
            json={
                "anchor_pem": root.certificate.public_bytes(Encoding.PEM).decode(),
                "marks": ["bank"],
            },
            headers=as_admin,
        ),
        client.post(
            "/v1/admin/trusted-issuers", json={"issuer": "https://issuer.example"}, headers=as_admin
        ),
    ]
    assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
    assert answers[0].json()["marks"] == ["shg-federation"]
    assert answers[1].json()["kind"] == "x509"
    assert answers[2].json()["types"] == ["*"]
    for bad in (
        {"issuer": "did:web:coop2.example", "marks": ["Not A Mark"]},
        {"issuer": "did:web:coop2.example", "anchor_pem": "x" * 64},
        {},
        {"anchor_pem": "-----BEGIN CERTIFICATE-----\n" + "A" * 80},
    ):
        refused = client.post("/v1/admin/trust-bundle/entries", json=bad, headers=as_admin)
        assert refused.status_code == 422, refused.text

    latest = client.get("/.well-known/trust-bundle")
    bundle = verify_bundle(latest.text, key, now=runtime.clock.now(), last_version=1)
    assert bundle.version == 4
    assert {e.kind for e in bundle.entries} == {"did:web", "x509", "https"}
    assert latest.headers["etag"] == '"trust-bundle-4"'

    # The old route's removal is a version too.
    listed = client.get("/v1/admin/trusted-issuers", headers=as_admin).json()
    https_entry = next(t for t in listed if t["kind"] == "https")
    assert (
        client.delete(
            f"/v1/admin/trusted-issuers/{https_entry['id']}", headers=as_admin
        ).status_code
        == 200
    )
    bundle = verify_bundle(
        client.get("/.well-known/trust-bundle").text, key, now=runtime.clock.now()
    )
    assert bundle.version == 5
    assert {e.kind for e in bundle.entries} == {"did:web", "x509"}


def test_pinning_another_platforms_bundle(
    client: TestClient, runtime: Runtime, platform_a: tuple[TestClient, Runtime]
) -> None:
    a_client, a_runtime = platform_a
    a_admin, as_admin = _admin(a_runtime), _admin(runtime)
    added = a_client.post(
        "/v1/admin/trust-bundle/entries",
        json={"issuer": "did:web:far.example", "marks": ["state-dpi"], "types": [VCT]},
        headers=a_admin,
    )
    assert added.status_code == 201, added.text
    a_key = a_client.get("/v1/admin/trust-bundle", headers=a_admin).json()
    relay = Relay(a_client)
    trust_pins.TRUST_FETCHER.set(
        runtime,
        OutboundFetcher(
            transport=httpx.MockTransport(relay.handler), resolver=lambda _h: ["93.184.216.34"]
        ),
    )

    # Pinned under another key: refused, nothing pinned.
    wrong = client.post(
        "/v1/admin/trust-pins",
        json={"url": BUNDLE_URL, "key": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"},
        headers=as_admin,
    )
    assert wrong.status_code == 400, wrong.text
    assert wrong.json()["code"] == TrustBundleSignatureInvalid.code
    assert client.get("/v1/admin/trust-pins", headers=as_admin).json() == []
    assert client.post(
        "/v1/admin/trust-pins", json={"url": BUNDLE_URL, "key": a_key["did"]}
    ).status_code in (401, 404)

    # Pinned by A's did:key (the JWK works as well): A's issuers are trusted here.
    pinned = client.post(
        "/v1/admin/trust-pins", json={"url": BUNDLE_URL, "key": a_key["did"]}, headers=as_admin
    )
    assert pinned.status_code == 201, pinned.text
    assert (pinned.json()["version"], pinned.json()["iss"]) == (1, A_URL)
    old_token = a_client.get("/.well-known/trust-bundle").text
    with transaction(runtime.sessions) as session:
        entry = trust_registry.trusted(
            session, runtime, "did:web:far.example", VCT, required_marks={"state-dpi"}
        )
        assert entry.kind == "did:web"
        with pytest.raises(IssuerNotTrusted) as info:
            trust_registry.trusted(session, runtime, "did:web:far.example", "OtherType")
        assert info.value.reason == "type_not_allowed"

    # A changes its list; the refresh takes the new version.
    a_client.post(
        "/v1/admin/trust-bundle/entries", json={"issuer": "did:web:near.example"}, headers=a_admin
    )
    refreshed = client.post("/v1/admin/trust-pins/refresh", headers=as_admin).json()
    assert [(r["accepted"], r["version"]) for r in refreshed] == [(True, 2)]
    with transaction(runtime.sessions) as session:
        assert trust_registry.trusted(session, runtime, "did:web:near.example", "Any").id == (
            "did:web:near.example"
        )

    # An old bundle replayed is refused as a rollback; the kept one stays.
    relay.replay = old_token
    refused = client.post("/v1/admin/trust-pins/refresh", headers=as_admin).json()
    assert [(r["accepted"], r["reason"], r["version"]) for r in refused] == [(False, "rollback", 2)]
    relay.replay = old_token[:-4] + ("AAAA" if not old_token.endswith("AAAA") else "BBBB")
    refused = client.post("/v1/admin/trust-pins/refresh", headers=as_admin).json()
    assert refused[0]["reason"] in ("signature_invalid", "invalid")
    with transaction(runtime.sessions) as session:
        assert trust_registry.trusted(session, runtime, "did:web:near.example", "Any")
        types = sorted(session.scalars(select(EventRow.type).where(EventRow.type.like("trust.p%"))))
    assert types == [
        "trust.pin_refreshed",
        "trust.pin_refused",
        "trust.pin_refused",
        "trust.pinned",
    ]

    pin_id = client.get("/v1/admin/trust-pins", headers=as_admin).json()[0]["id"]
    assert client.delete(f"/v1/admin/trust-pins/{pin_id}", headers=as_admin).status_code == 200
    with transaction(runtime.sessions) as session, pytest.raises(IssuerNotTrusted):
        trust_registry.trusted(session, runtime, "did:web:near.example", "Any")


def test_policies_over_http(client: TestClient, runtime: Runtime) -> None:
    as_admin = _admin(runtime)
    document = {
        "id": "income",
        "version": 1,
        "rule": {
            "rule": "all_of",
            "rules": [
                {"rule": "require_type", "types": [VCT]},
                {"rule": "predicate", "path": ["income"], "op": "gte", "value": 1000},
            ],
        },
    }
    body = {"owner": "platform", "profile": "eu", "document": document}
    assert client.post("/v1/verifier/policies", json=body).status_code in (401, 404)
    created = client.post("/v1/verifier/policies", json=body, headers=as_admin)
    assert created.status_code == 201, created.text
    assert created.json()["effective"]["rule"]["rules"][0] == document["rule"]
    assert client.post("/v1/verifier/policies", json=body, headers=as_admin).status_code == 409
    bad = {**body, "document": {**document, "id": "x", "rule": {"rule": "all_of", "rules": []}}}
    refused = client.post("/v1/verifier/policies", json=bad, headers=as_admin)
    assert (refused.status_code, refused.json()["code"]) == (422, "verifier.policy_invalid")

    v2 = client.post(
        "/v1/verifier/policies/platform/income/versions",
        json={"document": {**document, "version": 2}},
        headers=as_admin,
    )
    assert (v2.status_code, v2.json()["profile"]) == (201, "eu")
    floor = client.put(
        "/v1/verifier/policies/platform/income/floor", json={"floor": 2}, headers=as_admin
    )
    assert (floor.status_code, floor.json()["floor"]) == (200, 2)
    lowered = client.put(
        "/v1/verifier/policies/platform/income/floor", json={"floor": 1}, headers=as_admin
    )
    assert lowered.status_code == 409
    one = client.get("/v1/verifier/policies/platform/income?version=1", headers=as_admin).json()
    assert (one["version"], one["floor"], one["document"]) == (1, 2, document)
    assert [p["version"] for p in client.get("/v1/verifier/policies", headers=as_admin).json()] == [
        2
    ]
    missing = client.get("/v1/verifier/policies/platform/nope", headers=as_admin)
    assert (missing.status_code, missing.json()["code"]) == (404, "verifier.policy_not_found")


class Network:
    """Every GET from the platform under test to https://a.example, handed to A's app."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "a.example":
            return httpx.Response(404)
        target = request.url.raw_path.decode("ascii")
        answer = self.client.get(target, headers={"Accept": request.headers.get("Accept", "*/*")})
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)


def test_a_verifier_pinning_this_platforms_bundle_accepts_its_own_credentials(
    client: TestClient, runtime: Runtime, platform_a: tuple[TestClient, Runtime]
) -> None:
    # Platform A issues a credential of its own; its bundle names A itself, though A's
    # trust list is empty (the issue: a lender runs its own verifier against this bundle).
    a_client, a_runtime = platform_a
    issued = Issued(a_client, a_runtime)
    a_key = a_client.get("/v1/admin/trust-bundle", headers=issued.as_admin).json()
    assert [(e["id"], e["kind"], e["types"]) for e in a_key["issuers"]] == [(A_URL, "https", ["*"])]
    network = Network(a_client)
    fetcher = OutboundFetcher(
        transport=httpx.MockTransport(network.handler), resolver=lambda _h: ["93.184.216.34"]
    )
    trust_pins.TRUST_FETCHER.set(runtime, fetcher)
    FOREIGN_ISSUERS.set(runtime, ForeignIssuers(fetcher))
    as_admin = _admin(runtime)
    check = {"credential": issued.text, "format": "dc+sd-jwt", "key_binding": "none"}

    # Before the pin, A is nobody here.
    refused = client.post("/v1/credentials/verify", json=check)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "credential.issuer_untrusted"

    pinned = client.post(
        "/v1/admin/trust-pins", json={"url": BUNDLE_URL, "key": a_key["did"]}, headers=as_admin
    )
    assert pinned.status_code == 201, pinned.text
    # Pinned: A's credential verifies here (A's keys from its JWT VC Issuer Metadata, its
    # status from its list, both fetched from A).
    verified = client.post("/v1/credentials/verify", json=check)
    assert verified.status_code == 200, verified.text
    assert verified.json()["claims"]["credit_tier"] == "B"
    # Revoked at A: refused here.
    revoked = a_client.post(f"/v1/credentials/{issued.id}/revoke", headers=issued.as_admin)
    assert revoked.status_code == 200, revoked.text
    FOREIGN_ISSUERS.set(runtime, ForeignIssuers(fetcher))  # no cached list
    refused = client.post("/v1/credentials/verify", json=check)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "credential.revoked"
