"""Predicate attestations over HTTP on both databases: booleans only, bound to nonce and
audience, verifiable with the published key; delegates and outsiders."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient

from credit_commons.core.encoding import b64url_decode
from credit_commons.keys.jwk import public_key_from_jwk
from credit_commons.runtime import Runtime
from credit_commons.verifier.predicate_errors import AttestationAudienceMismatch
from credit_commons.verifier.predicates import verify_attestation

NONCE = "n0nce-1234567890abcdef"
AUDIENCE = "lender-client-7"


def test_attestation_round_trip(client: TestClient, runtime: Runtime) -> None:
    today = runtime.clock.now().date()
    born = date(today.year - 61, 1, 1).isoformat()
    person = client.post(
        "/v1/identities",
        json={
            "profile": {"name": "Gopal Verma"},
            "attributes": {"birth_date": born, "income_annual": 420000, "state": "UP"},
        },
    ).json()
    token, auth = person["identity_token"], {"Authorization": f"Bearer {person['access_token']}"}
    claims = [
        {"attribute": "age", "operator": ">=", "value": 60},
        {"attribute": "income_annual", "operator": "<=", "value": 500000},
        {"attribute": "state", "operator": "==", "value": "MH"},
    ]
    body = {"claims": claims, "nonce": NONCE, "audience": AUDIENCE}
    response = client.post(f"/v1/identities/{token}/verify", json=body, headers=auth)
    assert response.status_code == 200, response.text
    data = response.json()
    assert [r["satisfied"] for r in data["results"]] == [True, True, False]
    assert data["all_satisfied"] is False
    for secret in (born, "420000", '"UP"', "Gopal"):
        assert secret not in response.text

    jwks = client.get("/v1/attestations/jwks").json()
    key = public_key_from_jwk(
        {k: v for k, v in jwks["keys"][0].items() if k in {"kty", "crv", "x", "y"}}
    )
    attestation = verify_attestation(
        data["attestation"], public_key=key, audience=AUDIENCE, nonce=NONCE, now=runtime.clock.now()
    )
    assert attestation.sub == token
    # The signed attestation carries booleans, never the attributes behind them.
    header, payload = (b64url_decode(part).decode() for part in data["attestation"].split(".")[:2])
    for secret in (born, "420000", '"UP"', "Gopal"):
        assert secret not in header
        assert secret not in payload
    with pytest.raises(AttestationAudienceMismatch):
        verify_attestation(
            data["attestation"],
            public_key=key,
            audience="other",
            nonce=NONCE,
            now=runtime.clock.now(),
        )

    stranger = client.post("/v1/identities", json={"profile": {"name": "Stranger"}}).json()
    assert (
        client.post(
            f"/v1/identities/{token}/verify",
            json=body,
            headers={"Authorization": f"Bearer {stranger['access_token']}"},
        ).status_code
        == 404
    )
    too_many = {**body, "claims": claims * 4}
    assert (
        client.post(f"/v1/identities/{token}/verify", json=too_many, headers=auth).status_code
        == 422
    )
    bad_operator = {**body, "claims": [{"attribute": "state", "operator": ">=", "value": "UP"}]}
    assert (
        client.post(f"/v1/identities/{token}/verify", json=bad_operator, headers=auth).status_code
        == 422
    )
