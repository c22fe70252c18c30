"""Data-subject requests over HTTP on both databases: open → confirm (owner or DID
signature) → a short-lived, single-use token → export or erasure."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from credit_commons.core.clock import FixedClock
from credit_commons.core.encoding import b64url_encode
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.did_key import encode_did_key
from credit_commons.runtime import Runtime


@pytest.fixture(autouse=True)
def clock(runtime: Runtime) -> FixedClock:
    fixed = FixedClock(runtime.clock.now())
    runtime.clock = fixed
    return fixed


@pytest.mark.parametrize("key_type", list(KeyType))
def test_erasure_confirmed_with_a_did_signature(client: TestClient, key_type: KeyType) -> None:
    key = PrivateKey.generate(key_type)
    body = client.post(
        "/v1/identities",
        json={
            "profile": {"name": "Lakshmi Rao", "did": encode_did_key(key.public_key)},
            "identifiers": {"pan": "ABCPE1234F"},
        },
    ).json()
    token = body["identity_token"]
    opened = client.post(f"/v1/identities/{token}/requests", json={"kind": "erasure"}).json()
    base = f"/v1/identities/{token}/requests/{opened['request_id']}"

    wrong_key = PrivateKey.generate(key_type)
    bad = client.post(
        f"{base}/confirm",
        json={"signature": b64url_encode(wrong_key.sign(opened["sign"].encode()))},
    )
    assert bad.status_code == 403
    assert client.post(f"{base}/confirm", json={}).status_code == 403

    confirmed = client.post(
        f"{base}/confirm", json={"signature": b64url_encode(key.sign(opened["sign"].encode()))}
    )
    assert confirmed.status_code == 200, confirmed.text
    dsr_token = confirmed.json()["dsr_token"]
    assert client.post(f"{base}/fulfil", headers={"X-DSR-Token": "dsr_forged"}).status_code == 403
    done = client.post(f"{base}/fulfil", headers={"X-DSR-Token": dsr_token})
    assert done.status_code == 200, done.text
    assert done.json()["erased"] is True
    replay = client.post(f"{base}/fulfil", headers={"X-DSR-Token": dsr_token})
    assert replay.status_code == 403
    # A self-registration with the erased subject's (unverified) PAN answers as any other;
    # erased identifiers are refused only to an authority binding them (test_onboarding.py).
    assert (
        client.post(
            "/v1/identities", json={"profile": {"name": "x"}, "identifiers": {"pan": "ABCPE1234F"}}
        ).status_code
        == 201
    )


def test_export_confirmed_by_the_owner_and_token_expiry(
    client: TestClient, clock: FixedClock
) -> None:
    body = client.post("/v1/identities", json={"profile": {"name": "Owner Only"}}).json()
    token, auth = body["identity_token"], {"Authorization": f"Bearer {body['access_token']}"}
    opened = client.post(f"/v1/identities/{token}/requests", json={"kind": "export"}).json()
    base = f"/v1/identities/{token}/requests/{opened['request_id']}"
    confirmed = client.post(f"{base}/confirm", json={}, headers=auth).json()
    export = client.post(f"{base}/fulfil", headers={"X-DSR-Token": confirmed["dsr_token"]})
    assert export.json()["profile"]["name"] == "Owner Only"

    second = client.post(f"/v1/identities/{token}/requests", json={"kind": "export"}).json()
    base2 = f"/v1/identities/{token}/requests/{second['request_id']}"
    token2 = client.post(f"{base2}/confirm", json={}, headers=auth).json()["dsr_token"]
    clock.advance(timedelta(minutes=11))
    assert client.post(f"{base2}/fulfil", headers={"X-DSR-Token": token2}).status_code == 403

    # Opening a request reveals nothing about whether the identity exists.
    ghost = client.post("/v1/identities/idt_doesnotexist00/requests", json={"kind": "erasure"})
    assert ghost.status_code == 201
    assert set(ghost.json()) == set(opened)
