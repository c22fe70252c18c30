"""OID4VCI 1.0 pre-authorized code flow over HTTP on SQLite and PostgreSQL:
offer → token (tx_code) → nonce → proof → credential → present → verify → revoke →
verify fails with credential.revoked; replays of the code or the nonce fail."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi.testclient import TestClient
from tests.factories import readiness_claims

from credit_commons.core.db import transaction
from credit_commons.formats.jws import sign_compact
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer.models import CredentialRow
from credit_commons.issuer.sd_jwt import present
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"


def proof(holder: PrivateKey, issuer: str, nonce: str, iat: int) -> str:
    return sign_compact(
        {"typ": "openid4vci-proof+jwt", "jwk": public_key_to_jwk(holder.public_key)},
        {"aud": issuer, "iat": iat, "nonce": nonce},
        holder,
    )


def make_offer(client: TestClient, admin: str, subject: str, **extra: object) -> httpx.Response:
    """POST an offer of a CreditReadinessCredential for ``subject`` (``extra``: format, tx_code)."""
    return client.post(
        "/v1/credential-offers",
        json={
            "type": "CreditReadinessCredential",
            "subject": subject,
            "claims": readiness_claims(subject),
            **extra,
        },
        headers={"Authorization": f"Bearer {admin}"},
    )


def code_of(offer: dict[str, Any]) -> str:
    return str(offer["credential_offer"]["grants"][GRANT]["pre-authorized_code"])


def redeem(client: TestClient, code: str, tx_code: str | None = None) -> httpx.Response:
    """POST the pre-authorized code (and transaction code, if any) to /token."""
    data = {"grant_type": GRANT, "pre-authorized_code": code}
    if tx_code is not None:
        data["tx_code"] = tx_code
    return client.post("/token", data=data, headers=FORM)


def test_pre_authorized_code_flow(client: TestClient, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "issuer-desk")
    msme = client.post(
        "/v1/identities", json={"roles": ["business"], "profile": {"name": "Kisan Foods"}}
    ).json()
    metadata = client.get("/.well-known/openid-credential-issuer").json()
    issuer = metadata["credential_issuer"]
    assert "CreditReadinessCredential" in metadata["credential_configurations_supported"]
    as_meta = client.get("/.well-known/oauth-authorization-server").json()
    assert as_meta["token_endpoint"].endswith("/token")

    created = make_offer(client, admin, msme["identity_token"])
    assert created.status_code == 201, created.text
    offer = created.json()
    tx_code = offer["tx_code"]
    # By value, by reference, as a QR code.
    by_value = parse_qs(urlsplit(offer["offer_uri"]).query)["credential_offer"][0]
    assert '"pre-authorized_code"' in by_value
    reference = parse_qs(urlsplit(offer["offer_uri_by_reference"]).query)["credential_offer_uri"][0]
    fetched = client.get(urlsplit(reference).path).json()
    assert fetched == offer["credential_offer"]
    qr = client.get(f"/v1/credential-offers/{offer['offer_id']}/qr.svg")
    assert qr.headers["content-type"] == "image/svg+xml"
    assert qr.content.startswith(b"<?xml")

    code = code_of(offer)
    wrong = redeem(client, code, "000000" if tx_code != "000000" else "111111")
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    # A wrong transaction code spends the code: the issuer makes a new offer.
    assert redeem(client, code, tx_code).json()["error"] == "invalid_grant"
    offer = make_offer(client, admin, msme["identity_token"]).json()
    code, tx_code = code_of(offer), offer["tx_code"]
    tokens = redeem(client, code, tx_code)
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["cache-control"] == "no-store"
    access = tokens.json()["access_token"]
    replay = redeem(client, code, tx_code)
    assert replay.json()["error"] == "invalid_grant"

    holder = PrivateKey.generate(KeyType.P256)
    now = int(runtime.clock.now().timestamp())
    c_nonce = client.post("/nonce").json()["c_nonce"]
    request = {
        "credential_configuration_id": "CreditReadinessCredential",
        "proofs": {"jwt": [proof(holder, issuer, c_nonce, now)]},
    }
    override = client.post(
        "/credential",
        json={**request, "claims": {"credit_tier": "A"}},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert override.json()["error"] == "invalid_credential_request"
    stale = client.post(
        "/credential",
        json={**request, "proofs": {"jwt": [proof(holder, issuer, c_nonce, now - 3600)]}},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert stale.json()["error"] == "invalid_proof"
    issued = client.post("/credential", json=request, headers={"Authorization": f"Bearer {access}"})
    assert issued.status_code == 200, issued.text
    credential = issued.json()["credentials"][0]["credential"]
    again = client.post("/credential", json=request, headers={"Authorization": f"Bearer {access}"})
    assert again.status_code == 401  # the access token is spent

    # A second flow whose proof replays the first nonce fails.
    offer2 = make_offer(client, admin, msme["identity_token"], tx_code=False).json()
    access2 = redeem(client, code_of(offer2)).json()["access_token"]
    replayed = client.post(
        "/credential", json=request, headers={"Authorization": f"Bearer {access2}"}
    )
    assert replayed.json()["error"] == "invalid_nonce"

    audience, nonce = "https://lender.example/verify", secrets.token_urlsafe(12)
    shown = present(
        SdJwt.parse(credential),
        disclose={"/debt_ratio_bracket"},
        holder_signer=holder,
        audience=audience,
        nonce=nonce,
        iat=now,
    )
    verified = client.post(
        "/v1/presentations/verify",
        json={"presentation": shown, "audience": audience, "nonce": nonce},
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["claims"]["debt_ratio_bracket"] == "0.2-0.4"

    with transaction(runtime.read_sessions) as session:
        credential_id = (
            session.query(CredentialRow.id).order_by(CredentialRow.issued_at.desc()).first()[0]
        )  # type: ignore[index]
    client.post(
        f"/v1/credentials/{credential_id}/revoke", headers={"Authorization": f"Bearer {admin}"}
    )
    revoked = client.post(
        "/v1/presentations/verify",
        json={"presentation": shown, "audience": audience, "nonce": nonce},
    )
    assert revoked.json()["code"] == "credential.revoked"


def test_vc_jwt_through_oid4vci(client: TestClient, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "issuer-desk")
    msme = client.post("/v1/identities", json={"profile": {"name": "VC JWT Via OID4VCI"}}).json()
    metadata = client.get("/.well-known/openid-credential-issuer").json()
    configuration = metadata["credential_configurations_supported"][
        "CreditReadinessCredential_vc_jwt"
    ]
    assert configuration["format"] == "vc+jwt"
    assert (
        "CreditReadinessCredential_jwt_vc_json"
        not in metadata["credential_configurations_supported"]
    )
    offer = make_offer(client, admin, msme["identity_token"], format="vc+jwt", tx_code=False).json()
    assert offer["credential_offer"]["credential_configuration_ids"] == [
        "CreditReadinessCredential_vc_jwt"
    ]
    access = redeem(client, code_of(offer)).json()["access_token"]
    holder = PrivateKey.generate(KeyType.ED25519)
    nonce = client.post("/nonce").json()["c_nonce"]
    now = int(runtime.clock.now().timestamp())
    request = {
        "credential_configuration_id": "CreditReadinessCredential",  # the wrong configuration
        "proofs": {"jwt": [proof(holder, metadata["credential_issuer"], nonce, now)]},
    }
    wrong = client.post("/credential", json=request, headers={"Authorization": f"Bearer {access}"})
    assert wrong.json()["error"] == "unknown_credential_configuration"
    # The access token was spent by the refused request: the issuer offers again.
    offer = make_offer(client, admin, msme["identity_token"], format="vc+jwt", tx_code=False).json()
    access = redeem(client, code_of(offer)).json()["access_token"]
    nonce = client.post("/nonce").json()["c_nonce"]
    request = {
        "credential_configuration_id": "CreditReadinessCredential_vc_jwt",
        "proofs": {"jwt": [proof(holder, metadata["credential_issuer"], nonce, now)]},
    }
    issued = client.post("/credential", json=request, headers={"Authorization": f"Bearer {access}"})
    assert issued.status_code == 200, issued.text
    token = issued.json()["credentials"][0]["credential"]
    verified = client.post("/v1/credentials/verify", json={"credential": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["holder"].startswith("did:key:z6Mk")
