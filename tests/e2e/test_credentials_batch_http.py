"""``POST /v1/credentials/batch`` over HTTP on SQLite and PostgreSQL: all or none, the
failing item named, administrators only, at most 1,000 items."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.factories import readiness_claims

from credit_commons.core.db import transaction
from credit_commons.events import EventRow
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer.models import CredentialRow
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime


def _setup(client: TestClient, runtime: Runtime, n: int) -> tuple[dict[str, str], list[str]]:
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "issuer-desk")
    subjects = [
        client.post(
            "/v1/identities", json={"roles": ["business"], "profile": {"name": f"MSME {i}"}}
        ).json()["identity_token"]
        for i in range(n)
    ]
    return {"Authorization": f"Bearer {admin}"}, subjects


def _item(subject: str, **overrides: Any) -> dict[str, Any]:
    holder = public_key_to_jwk(PrivateKey.generate(KeyType.ED25519).public_key)
    item: dict[str, Any] = {
        "type": "CreditReadinessCredential",
        "subject": subject,
        "claims": readiness_claims(subject, 700),
        "holder_jwk": holder,
    }
    item.update(overrides)
    return item


def _counts(runtime: Runtime) -> tuple[int, int]:
    with transaction(runtime.sessions) as session:
        credentials = session.scalar(select(func.count()).select_from(CredentialRow))
        issued = session.scalar(
            select(func.count()).select_from(EventRow).where(EventRow.type == "credential.issued")
        )
    return int(credentials or 0), int(issued or 0)


def test_batch_issues_every_item_in_order(client: TestClient, runtime: Runtime) -> None:
    as_admin, subjects = _setup(client, runtime, 3)
    items = [_item(s) for s in subjects] + [_item(subjects[0], format="vc+jwt")]
    response = client.post("/v1/credentials/batch", json={"items": items}, headers=as_admin)
    assert response.status_code == 201, response.text
    issued = response.json()["items"]
    assert [i["format"] for i in issued] == ["dc+sd-jwt"] * 3 + ["vc+jwt"]
    assert len({i["credential_id"] for i in issued}) == 4
    for item, result in zip(items[:3], issued[:3], strict=True):
        payload = SdJwt.parse(result["credential"]).payload
        assert payload["cnf"]["jwk"] == item["holder_jwk"]
    assert _counts(runtime) == (4, 4)
    listed = client.get("/v1/credentials", params={"subject": subjects[0]}, headers=as_admin)
    assert len(listed.json()) == 2


def test_a_failing_item_fails_the_batch_and_is_named(client: TestClient, runtime: Runtime) -> None:
    as_admin, subjects = _setup(client, runtime, 3)
    bad_claims = readiness_claims(subjects[2], 700, credit_tier="Z")
    items = [_item(subjects[0]), _item(subjects[1]), _item(subjects[2], claims=bad_claims)]
    response = client.post("/v1/credentials/batch", json={"items": items}, headers=as_admin)
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["item"] == 2
    assert problem["code"] == "credential.claims_invalid"
    assert _counts(runtime) == (0, 0)  # all or none

    unknown = {**_item(subjects[0]), "subject": "idt_" + "x" * 20}
    response = client.post(
        "/v1/credentials/batch", json={"items": [_item(subjects[0]), unknown]}, headers=as_admin
    )
    assert response.status_code == 404
    assert response.json()["item"] == 1
    assert _counts(runtime) == (0, 0)

    private = _item(subjects[1])
    private["holder_jwk"] = {**private["holder_jwk"], "d": "A" * 43}
    response = client.post("/v1/credentials/batch", json={"items": [private]}, headers=as_admin)
    assert response.status_code == 422
    assert response.json()["item"] == 0
    assert _counts(runtime) == (0, 0)


def test_batch_is_for_administrators_and_bounded(client: TestClient, runtime: Runtime) -> None:
    as_admin, subjects = _setup(client, runtime, 1)
    one = _item(subjects[0])
    refused = client.post("/v1/credentials/batch", json={"items": [one]})
    assert refused.status_code in (401, 404)
    assert "item" not in refused.json()
    assert (
        client.post("/v1/credentials/batch", json={"items": []}, headers=as_admin).status_code
        == 422
    )
    too_many = client.post("/v1/credentials/batch", json={"items": [one] * 1001}, headers=as_admin)
    assert too_many.status_code == 422
    extra = client.post(
        "/v1/credentials/batch", json={"items": [one], "issuer": "x"}, headers=as_admin
    )
    assert extra.status_code == 422
    assert _counts(runtime) == (0, 0)
