"""Discovery with lender-bound references, and approval by a DID signature, over HTTP."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.consent_world import CRC, World

from credit_commons.consent.decisions import approval_message
from credit_commons.core.encoding import b64url_encode
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.did_key import encode_did_key


def test_discovery_without_identifiers(world: World) -> None:
    hidden = world.http.get("/v1/lender/discovery", headers=world.token())
    assert hidden.status_code == 200
    assert hidden.json() == []  # nobody opted in
    opted = world.http.put(
        f"/v1/borrowers/{world.borrower}/discovery",
        json={"enabled": True},
        headers=world.as_borrower,
    )
    assert opted.status_code == 200, opted.text
    assert opted.json()["credit_tier"] == "B"
    found = world.http.get("/v1/lender/discovery", headers=world.token()).json()
    assert len(found) == 1
    entry = found[0]
    assert set(entry) == {"borrower_ref", "credit_tier", "income_bracket", "debt_ratio_bracket"}
    assert world.borrower not in entry["borrower_ref"]
    assert entry["credit_tier"] == "B"
    # The reference works for this lender only.
    body = {
        "template": "loan_underwriting",
        "borrower": entry["borrower_ref"],
        "purpose": "105",
        "consent_expiry": (world.clock.now() + timedelta(days=3)).isoformat(),
        "scopes": [{"type": CRC, "claims": ["/income_bracket"]}],
    }
    mine = world.http.post("/v1/consents", json=body, headers=world.token())
    assert mine.status_code == 201, mine.text
    listed = world.http.get(
        f"/v1/borrowers/{world.borrower}/consents", headers=world.as_borrower
    ).json()
    assert [c["consent_id"] for c in listed] == [mine.json()["consent_id"]]
    theirs = world.http.post("/v1/consents", json=body, headers=world.token(world.other))
    assert theirs.status_code == 404
    # Opting out removes the borrower from discovery.
    world.http.put(
        f"/v1/borrowers/{world.borrower}/discovery",
        json={"enabled": False},
        headers=world.as_borrower,
    )
    assert world.http.get("/v1/lender/discovery", headers=world.token()).json() == []
    narrow = world.token(scope="consent:read")
    assert world.http.get("/v1/lender/discovery", headers=narrow).status_code == 403


def test_approval_by_did_signature(world: World) -> None:
    key = PrivateKey.generate(KeyType.ED25519)
    made = world.http.post(
        "/v1/identities",
        json={
            "roles": ["business"],
            "profile": {"name": "D", "did": encode_did_key(key.public_key)},
        },
    )
    assert made.status_code == 201, made.text
    token = made.json()["identity_token"]
    body = {
        "template": "loan_underwriting",
        "borrower": token,
        "purpose": "105",
        "consent_expiry": (world.clock.now() + timedelta(days=3)).isoformat(),
        "scopes": [{"type": CRC, "claims": []}],
    }
    consent_id = world.http.post("/v1/consents", json=body, headers=world.token()).json()[
        "consent_id"
    ]
    stranger = PrivateKey.generate(KeyType.ED25519)
    forged = b64url_encode(stranger.sign(approval_message(consent_id)))
    refused = world.http.post(
        f"/v1/consents/{consent_id}/signed-approval", json={"signature": forged}
    )
    assert refused.status_code == 404
    other_consent = b64url_encode(key.sign(approval_message("cns_" + "0" * 26)))
    refused = world.http.post(
        f"/v1/consents/{consent_id}/signed-approval", json={"signature": other_consent}
    )
    assert refused.status_code == 404
    signature = b64url_encode(key.sign(approval_message(consent_id)))
    done = world.http.post(
        f"/v1/consents/{consent_id}/signed-approval", json={"signature": signature}
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "ACTIVE"
    assert done.json()["approval"] == "did"
