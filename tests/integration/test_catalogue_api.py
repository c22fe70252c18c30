"""The credential catalogue over HTTP on both databases."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select

from credit_commons.core.db import transaction
from credit_commons.events import EventRow
from credit_commons.identity.auth import issue_admin_token
from credit_commons.runtime import Runtime


def test_catalogue_lists_builtin_and_admins_add_types(client: TestClient, runtime: Runtime) -> None:
    types = client.get("/v1/credential-types").json()
    assert [t["name"] for t in types] == [
        "CommunityTierCredential",
        "CreditReadinessCredential",
        "KycCredential",
        "ShgMembershipCredential",
    ]
    crc = client.get("/v1/credential-types/CreditReadinessCredential").json()
    assert "/score_opening" in crc["disclosable"]
    assert client.get("/v1/credential-types/NoSuchType").status_code == 404

    definition = {
        "name": "FarmerLandRecord",
        "vct": "https://credit-commons.dev/vct/farmer-land/v1",
        "schema": {
            "type": "object",
            "properties": {"hectares": {"type": "number"}},
            "required": ["hectares"],
        },
        "disclosable": ["/hectares"],
        "default_validity_days": 90,
    }
    assert client.put("/v1/credential-types", json=definition).status_code == 401
    person = client.post("/v1/identities", json={"profile": {"name": "Not Admin"}}).json()
    as_person = {"Authorization": f"Bearer {person['access_token']}"}
    assert client.put("/v1/credential-types", json=definition, headers=as_person).status_code == 404
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "catalogue")
    as_admin = {"Authorization": f"Bearer {admin}"}
    created = client.put("/v1/credential-types", json=definition, headers=as_admin)
    assert created.status_code == 200, created.text
    assert {t["name"] for t in client.get("/v1/credential-types").json()} == {
        "CommunityTierCredential",
        "CreditReadinessCredential",
        "FarmerLandRecord",
        "KycCredential",
        "ShgMembershipCredential",
    }
    bad = client.put(
        "/v1/credential-types", json={**definition, "schema": {"type": "array"}}, headers=as_admin
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "credential.type_invalid"


def test_keys_made_on_first_use_are_logged_once(client: TestClient, runtime: Runtime) -> None:
    # The issuer key appears with the first metadata request and is recorded as key.created;
    # later requests and the did:web document reuse it.
    first = client.get("/.well-known/jwt-vc-issuer").json()["jwks"]["keys"]
    assert len(first) == 1
    assert client.get("/.well-known/jwt-vc-issuer").json()["jwks"]["keys"] == first
    did = client.get("/.well-known/did.json").json()
    assert [m["publicKeyJwk"]["kid"] for m in did["verificationMethod"]] == [first[0]["kid"]]
    with transaction(runtime.read_sessions) as session:
        created = session.scalars(select(EventRow).where(EventRow.type == "key.created")).all()
        assert [json.loads(e.details)["key_name"] for e in created] == ["issuer"]
