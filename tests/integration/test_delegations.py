"""Delegations over HTTP on both databases: consent of both parties, permissions, expiry,
revocation, and no object-level authorisation bypass."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.identity.auth import issue_admin_token
from credit_commons.identity.links import is_tombstoned
from credit_commons.runtime import Runtime


@pytest.fixture(autouse=True)
def clock(runtime: Runtime) -> FixedClock:
    fixed = FixedClock(runtime.clock.now())
    runtime.clock = fixed
    return fixed


def register(
    client: TestClient, name: str, roles: list[str] | None = None
) -> tuple[str, dict[str, str]]:
    body = client.post(
        "/v1/identities", json={"roles": roles or ["citizen"], "profile": {"name": name}}
    ).json()
    return body["identity_token"], {"Authorization": f"Bearer {body['access_token']}"}


def test_a_delegate_reads_only_after_both_accept_and_until_revoked(
    client: TestClient, clock: FixedClock
) -> None:
    parent, parent_auth = register(client, "Meena Parent")
    child, child_auth = register(client, "Arjun Child")
    stranger, stranger_auth = register(client, "Not Related")
    profile = f"/v1/identities/{parent}/profile"

    offer = client.post(
        f"/v1/identities/{parent}/delegations",
        json={
            "delegatee_token": child,
            "type": "parent_child",
            "permissions": ["read:profile"],
            "expires_in_days": 30,
        },
        headers=parent_auth,
    )
    assert offer.status_code == 201, offer.text
    delegation = offer.json()
    assert delegation["effective"] is False
    assert client.get(profile, headers=child_auth).status_code == 404  # not accepted yet

    # Only the delegatee can accept, only through their own token path.
    assert (
        client.post(
            f"/v1/identities/{stranger}/delegations/{delegation['id']}/accept",
            headers=stranger_auth,
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/v1/identities/{parent}/delegations/{delegation['id']}/accept", headers=parent_auth
        ).status_code
        == 404
    )
    accepted = client.post(
        f"/v1/identities/{child}/delegations/{delegation['id']}/accept", headers=child_auth
    )
    assert accepted.json()["effective"] is True
    assert client.get(profile, headers=child_auth).json()["name"] == "Meena Parent"
    # read:profile does not grant export or erasure, and nothing for the stranger.
    assert client.post(f"/v1/identities/{parent}/export", headers=child_auth).status_code == 404
    assert client.delete(f"/v1/identities/{parent}", headers=child_auth).status_code == 404
    assert client.get(profile, headers=stranger_auth).status_code == 404

    listed = client.get(f"/v1/identities/{child}/delegations", headers=child_auth).json()
    assert [d["id"] for d in listed] == [delegation["id"]]
    assert (
        client.get(f"/v1/identities/{parent}/delegations", headers=stranger_auth).status_code == 404
    )

    revoked = client.delete(
        f"/v1/identities/{child}/delegations/{delegation['id']}", headers=child_auth
    )
    assert revoked.json()["revoked"] is True
    assert client.get(profile, headers=child_auth).status_code == 404

    export = client.post(f"/v1/identities/{parent}/export", headers=parent_auth).json()
    assert [d["revoked"] for d in export["delegations"]] == [True]
    assert {e["type"] for e in export["events"]} >= {"delegation.changed"}


def test_expiry_and_field_agent_rules(client: TestClient, clock: FixedClock) -> None:
    borrower, borrower_auth = register(client, "Kamla Borrower")
    citizen, _ = register(client, "Plain Citizen")
    agent, agent_auth = register(client, "Field Agent", roles=["field_agent"])
    body = {
        "type": "field_agent_assist",
        "permissions": ["read:profile", "assist:consent"],
        "expires_in_days": 1,
    }
    refused = client.post(
        f"/v1/identities/{borrower}/delegations",
        json={**body, "delegatee_token": citizen},
        headers=borrower_auth,
    )
    assert refused.status_code == 409
    offer = client.post(
        f"/v1/identities/{borrower}/delegations",
        json={**body, "delegatee_token": agent},
        headers=borrower_auth,
    ).json()
    client.post(f"/v1/identities/{agent}/delegations/{offer['id']}/accept", headers=agent_auth)
    assert client.get(f"/v1/identities/{borrower}/profile", headers=agent_auth).status_code == 200
    clock.advance(timedelta(days=1, seconds=1))
    assert client.get(f"/v1/identities/{borrower}/profile", headers=agent_auth).status_code == 404
    late = client.post(
        f"/v1/identities/{agent}/delegations/{offer['id']}/accept", headers=agent_auth
    )
    assert late.status_code == 409
    invalid = client.post(
        f"/v1/identities/{borrower}/delegations",
        json={**body, "delegatee_token": agent, "permissions": ["root:everything"]},
        headers=borrower_auth,
    )
    assert invalid.status_code == 422


def test_only_administrators_change_roles_and_verification(
    client: TestClient, runtime: Runtime
) -> None:
    person, person_auth = register(client, "Ramesh")
    change = {"roles": ["citizen", "farmer"], "verification_level": "document_verified"}
    assert (
        client.patch(f"/v1/identities/{person}", json=change, headers=person_auth).status_code
        == 404
    )
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "ops")
    updated = client.patch(
        f"/v1/identities/{person}", json=change, headers={"Authorization": f"Bearer {admin}"}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["roles"] == ["citizen", "farmer"]
    assert updated.json()["verification_level"] == "document_verified"
    assert (
        client.patch(
            f"/v1/identities/{person}",
            json={"roles": ["emperor"]},
            headers={"Authorization": f"Bearer {admin}"},
        ).status_code
        == 422
    )
    with transaction(runtime.read_sessions) as session:
        assert not is_tombstoned(session, runtime, person)
    client.delete(f"/v1/identities/{person}", headers=person_auth)
    with transaction(runtime.read_sessions) as session:
        assert is_tombstoned(session, runtime, person)
