"""Requests signed by the borrower's DID key (consent/holder_auth.py) through the wallet's
platform client, on both databases: listing and deciding consents, and every refusal —
each the same 401, recorded in the borrower's access history with its reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from tests.integration.consent_world import BASE, World

from credit_commons.consent.holder_auth import WINDOW
from credit_commons.core.db import transaction
from credit_commons.core.net import OutboundFetcher
from credit_commons.events import EventRow
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.wallet.platform import Platform, PlatformRefused, holder_proof


def _public_resolver(host: str) -> list[str]:
    # commons.test is the TestClient's name for the app: any public address passes the guard.
    del host
    return ["93.184.216.34"]


@pytest.fixture
def holder(world: World) -> Iterator[tuple[Platform, str]]:
    key = PrivateKey.generate(KeyType.P256)
    fetcher = OutboundFetcher(resolver=_public_resolver)
    client = Platform(BASE, key, None, fetcher=fetcher, http=world.http, now=world.now)
    client.token = client.register("Asha")["identity_token"]
    yield client, client.token
    fetcher.close()


def _denials(world: World, token: str) -> list[dict[str, Any]]:
    from credit_commons.identity.auth import subject_of  # noqa: PLC0415

    with transaction(world.rt.sessions) as session:
        rows = session.scalars(
            select(EventRow)
            .where(
                EventRow.type == "access.denied",
                EventRow.subject == subject_of(world.rt, token),
            )
            .order_by(EventRow.id)
        ).all()
        return [json.loads(r.details) for r in rows]


def test_list_approve_reject_and_decide_with_the_did_key(
    world: World,
    holder: tuple[Platform, str],
) -> None:
    client, token = holder
    first = world.consent(approve=False, borrower=token)
    second = world.consent(approve=False, borrower=token)
    listed = client.consents()
    assert [c["consent_id"] for c in listed] == [second, first]
    assert {c["status"] for c in listed} == {"PENDING"}
    assert [c["consent_id"] for c in client.consents("PENDING")] == [second, first]

    approved = client.approve(first)
    assert (approved["status"], approved["approval"]) == ("ACTIVE", "did")
    rejected = client.decide(second, "reject")
    assert rejected["status"] == "REJECTED"
    paused = client.decide(first, "pause")
    assert paused["status"] == "PAUSED"
    # The signed decision is recorded as taken with the DID key.
    with transaction(world.rt.sessions) as session:
        event = session.get(EventRow, paused["event_id"])
        assert event is not None
        assert json.loads(event.details)["approval"] == "did"
    assert [c["status"] for c in client.consents()] == ["REJECTED", "PAUSED"]
    assert _denials(world, token) == []


def test_every_refusal_is_the_same_401_and_recorded(
    world: World,
    holder: tuple[Platform, str],
) -> None:
    client, token = holder
    path = f"/v1/borrowers/{token}/consents"

    def send(proof: str, target: str = path) -> int:
        response = world.http.get(target, headers={"Authorization": f"Holder {proof}"})
        if response.status_code != 200:
            assert response.json()["code"] == "auth.invalid_token"
            assert response.json()["detail"] == "not permitted"
        return response.status_code

    good = holder_proof(client.key, token, "GET", path, b"", now=world.now())
    assert send(good) == 200
    assert send(good) == 401  # replayed
    stranger = PrivateKey.generate(KeyType.ED25519)
    assert send(holder_proof(stranger, token, "GET", path, b"", now=world.now())) == 401
    other_path = f"/v1/borrowers/{token}/access-history"
    elsewhere = holder_proof(client.key, token, "GET", path, b"", now=world.now())
    assert send(elsewhere, other_path) == 401
    assert send(holder_proof(client.key, token, "POST", path, b"", now=world.now())) == 401
    assert send(holder_proof(client.key, token, "GET", path, b"{}", now=world.now())) == 401
    stale = world.now() - WINDOW - 1
    assert send(holder_proof(client.key, token, "GET", path, b"", now=stale)) == 401
    assert send("not-a-jws") == 401
    reasons = [d["reason"] for d in _denials(world, token)]
    assert reasons == [
        "holder.proof_replayed",
        "holder.signature_invalid",
        "holder.request_mismatch",
        "holder.request_mismatch",
        "holder.request_mismatch",
        "holder.proof_stale",
    ]
    assert {d["operation"] for d in _denials(world, token)} == {"holder.request"}


def test_an_identity_without_a_did_and_another_identity(
    world: World,
    holder: tuple[Platform, str],
) -> None:
    client, token = holder
    # The world's borrower registered without a DID: no key can speak for them.
    path = f"/v1/borrowers/{world.borrower}/consents"
    proof = holder_proof(client.key, world.borrower, "GET", path, b"", now=world.now())
    refused = world.http.get(path, headers={"Authorization": f"Holder {proof}"})
    assert refused.status_code == 401
    assert _denials(world, world.borrower)[-1]["reason"] == "holder.no_did"
    # A holder's valid proof for itself does not reach another identity's consents.
    with pytest.raises(PlatformRefused) as caught:
        Platform(
            BASE,
            client.key,
            token,
            fetcher=OutboundFetcher(resolver=_public_resolver),
            http=world.http,
            now=world.now,
        ).request("GET", path, signed=True)
    assert caught.value.status == 404
    # Nor another identity's consent decisions.
    theirs = world.consent(approve=False)
    with pytest.raises(PlatformRefused) as caught:
        client.decide(theirs, "reject")
    assert caught.value.status == 404


def test_key_rotation_by_the_old_key_with_the_new_keys_signature(
    world: World,
    holder: tuple[Platform, str],
) -> None:
    client, token = holder
    consent_id = world.consent(approve=False, borrower=token)
    new = PrivateKey.generate(KeyType.ED25519)
    # Only a request signed by the current key may change it: not the bearer token.
    made = world.http.post(
        "/v1/identities", json={"profile": {"name": "Ravi", "did": "did:key:z6MkabcDEF"}}
    )
    assert made.status_code == 201, made.text
    bearer = {"Authorization": f"Bearer {made.json()['access_token']}"}
    refused = world.http.post(
        f"/v1/borrowers/{made.json()['identity_token']}/holder-key",
        json={"did": "did:key:z6MkabcDEF", "signature": "A" * 86},
        headers=bearer,
    )
    assert refused.status_code == 404
    # The new key must sign: a signature by another key is refused, nothing changes.
    impostor = Platform(
        BASE,
        client.key,
        token,
        fetcher=OutboundFetcher(resolver=_public_resolver),
        http=world.http,
        now=world.now,
    )
    from credit_commons.core.encoding import b64url_encode  # noqa: PLC0415
    from credit_commons.keys.did_key import encode_did_key  # noqa: PLC0415

    with pytest.raises(PlatformRefused) as caught:
        impostor.request(
            "POST",
            f"/v1/borrowers/{token}/holder-key",
            body={
                "did": encode_did_key(new.public_key),
                "signature": b64url_encode(client.key.sign(b"anything")),
            },
            signed=True,
        )
    assert caught.value.status == 422
    assert [c["consent_id"] for c in client.consents()] == [consent_id]

    changed = client.change_key(new)
    assert changed["did"] == encode_did_key(new.public_key)
    # The old key no longer speaks for the identity; the new one does.
    with pytest.raises(PlatformRefused) as caught:
        client.consents()
    assert caught.value.status == 401
    assert _denials(world, token)[-1]["reason"] == "holder.signature_invalid"
    client.key = new
    assert [c["consent_id"] for c in client.consents()] == [consent_id]
    assert client.approve(consent_id)["status"] == "ACTIVE"
