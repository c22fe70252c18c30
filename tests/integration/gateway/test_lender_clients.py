"""Lender client registration over HTTP and through the service, on both databases."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.lenders import admin_headers, events, jwks_of, register

from credit_commons import lenders
from credit_commons.core.db import transaction
from credit_commons.core.errors import NotFoundError, ValidationError
from credit_commons.identity.auth import Principal
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import private_key_to_jwk, public_key_to_jwk, thumbprint
from credit_commons.runtime import Runtime

ED = PrivateKey.generate(KeyType.ED25519)
P256 = PrivateKey.generate(KeyType.P256)


def body(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "Grameen Test Bank",
        "jwks": jwks_of((ED, "ed-1"), (P256, "ec-1")),
        "allowed_purposes": ["101", "103", "loan.underwriting"],
        "webhook_url": "https://lender.example/hooks/consent",
    }
    values.update(overrides)
    return values


def test_admins_register_read_and_update_lenders(client: TestClient, runtime: Runtime) -> None:
    admin = admin_headers(runtime)
    assert client.post("/v1/admin/lenders", json=body()).status_code == 401
    person = client.post("/v1/identities", json={"profile": {"name": "Not Admin"}}).json()
    as_person = {"Authorization": f"Bearer {person['access_token']}"}
    assert client.post("/v1/admin/lenders", json=body(), headers=as_person).status_code == 404

    created = client.post("/v1/admin/lenders", json=body(), headers=admin)
    assert created.status_code == 201, created.text
    lender = created.json()
    client_id = lender["client_id"]
    assert client_id.startswith("lnd_")
    assert len(client_id) == 26
    assert lender["allowed_purposes"] == ["101", "103", "loan.underwriting"]
    assert [k["kid"] for k in lender["jwks"]["keys"]] == ["ed-1", "ec-1"]
    assert [k["alg"] for k in lender["jwks"]["keys"]] == ["EdDSA", "ES256"]
    assert lender["active"] is True
    assert lender["webhook_url"] == "https://lender.example/hooks/consent"

    path = f"/v1/admin/lenders/{client_id}"
    assert client.get(path, headers=admin).json() == lender
    assert client.get(path, headers=as_person).status_code == 404
    assert client.get(path).status_code == 401
    assert client.get(f"/v1/admin/lenders/lnd_{'x' * 22}", headers=admin).status_code == 404

    replaced = client.patch(path, json={"jwks": jwks_of((P256, "ec-2"))}, headers=admin)
    assert replaced.status_code == 200, replaced.text
    assert [k["kid"] for k in replaced.json()["jwks"]["keys"]] == ["ec-2"]
    assert client.patch(path, json={"active": False}, headers=as_person).status_code == 404
    off = client.patch(path, json={"active": False, "webhook_url": None}, headers=admin).json()
    assert off["active"] is False
    assert off["webhook_url"] is None

    registered = events(runtime, "lender.registered")
    assert len(registered) == 1
    assert registered[0].object == runtime.objects.digest("lender_client", client_id)
    assert json.loads(registered[0].details) == {
        "key_count": 2,
        "purpose_count": 3,
        "webhook": True,
    }
    updated = [json.loads(e.details) for e in events(runtime, "lender.updated")]
    assert updated == [
        {
            "active": True,
            "keys_replaced": True,
            "purposes_changed": False,
            "webhook_changed": False,
        },
        {
            "active": False,
            "keys_replaced": False,
            "purposes_changed": False,
            "webhook_changed": True,
        },
    ]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"jwks": {"keys": []}}, "jwks"),
        ({"jwks": {"keys": [private_key_to_jwk(ED)]}}, "jwks"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}}, "jwks"),
        ({"jwks": {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}}, "jwks"),
        ({"jwks": jwks_of((ED, "same"), (P256, "same"))}, "jwks"),
        (
            {"jwks": {"keys": [public_key_to_jwk(ED.public_key, kid="x", alg="ES256")]}},
            "jwks",
        ),
        ({"jwks": {"keys": [public_key_to_jwk(ED.public_key, kid="x", alg="HS256")]}}, "jwks"),
        ({"jwks": {"keys": [public_key_to_jwk(ED.public_key, kid="x", use="enc")]}}, "jwks"),
        ({"jwks": {"keys": [public_key_to_jwk(ED.public_key, kid="bad kid")]}}, "jwks"),
        ({"allowed_purposes": ["106"]}, "allowed_purposes"),
        ({"allowed_purposes": ["Loan"]}, "allowed_purposes"),
        ({"webhook_url": "http://lender.example/hook"}, "webhook_url"),
        ({"webhook_url": "https://user:pw@lender.example/hook"}, "webhook_url"),
        ({"webhook_url": "https://127.0.0.1/hook"}, "webhook_url"),
        ({"webhook_url": "https://10.1.2.3/hook"}, "webhook_url"),
        ({"webhook_url": "ftp://lender.example/"}, "webhook_url"),
        ({"name": "   "}, "name"),
    ],
)
def test_bad_registrations_are_refused(
    client: TestClient, runtime: Runtime, overrides: dict[str, Any], field: str
) -> None:
    response = client.post(
        "/v1/admin/lenders", json=body(**overrides), headers=admin_headers(runtime)
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "request.invalid"
    assert response.json().get("field") == field
    assert events(runtime, "lender.registered") == []


def test_service_functions(client: TestClient, runtime: Runtime) -> None:
    admin = Principal("admin-1", "admin")
    ed_only = {"keys": [public_key_to_jwk(ED.public_key)]}
    with transaction(runtime.sessions) as session:
        created = lenders.register_client(
            session, runtime, admin, name="Bank", jwks=ed_only, allowed_purposes=["102", "102"]
        )
        with pytest.raises(NotFoundError):
            lenders.register_client(
                session, runtime, Principal("idt_x", "citizen"), name="B", jwks=ed_only,
                allowed_purposes=["101"],
            )  # fmt: skip
        with pytest.raises(ValidationError):
            lenders.register_client(
                session, runtime, admin, name="B", jwks=ed_only, allowed_purposes="101"
            )
    with transaction(runtime.read_sessions) as session:
        found = lenders.get_client(session, created.client_id)
        assert lenders.get_client(session, "lnd_" + "A" * 22) is None
        assert lenders.get_client(session, "not an id") is None
        # Shown by name: the registered one, else the id itself (no longer registered, or
        # not an id at all).
        shown = lenders.client_names(session, [created.client_id, "lnd_" + "A" * 22, "x y"])
    assert shown == {created.client_id: "Bank", "lnd_" + "A" * 22: "lnd_" + "A" * 22, "x y": "x y"}
    assert found is not None
    assert found.allowed_purposes == ("102",)
    assert found.webhook_url is None
    assert found.active
    # Without a kid, the key is named by its thumbprint and is the only key.
    assert found.jwks["keys"][0]["kid"] == thumbprint(ED.public_key)
    assert found.key(None) == ED.public_key
    assert found.key(thumbprint(ED.public_key)) == ED.public_key
    assert found.key("other") is None


def test_the_only_key_or_a_kid(client: TestClient, runtime: Runtime) -> None:
    client_id, _ = register(client, admin_headers(runtime), P256)
    with transaction(runtime.read_sessions) as session:
        lender = lenders.get_client(session, client_id)
    assert lender is not None
    assert lender.key(None) == P256.public_key
    assert lender.key("k1") == P256.public_key
    assert lender.key(7) is None
