"""End to end over HTTP on SQLite and PostgreSQL: issue a Credit Readiness SD-JWT VC,
present it with key binding and selective disclosure, verify, revoke, verify fails."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.conftest import make_settings, migrate
from tests.factories import readiness_claims

from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_decode
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.gateway.app import create_app
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer.catalogue import commit_score
from credit_commons.issuer.sd_jwt import present
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.did_web import DidResolver
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime

AUDIENCE = "https://lender.example/verifier"


def _leaves(value: object) -> Iterator[object]:
    """Every scalar inside a JSON value."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


@pytest.mark.parametrize("holder_type", list(KeyType))
def test_issue_present_verify_revoke(
    client: TestClient, runtime: Runtime, holder_type: KeyType
) -> None:
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "issuer-desk")
    as_admin = {"Authorization": f"Bearer {admin}"}
    msme = client.post(
        "/v1/identities", json={"roles": ["business"], "profile": {"name": "Shakti Textiles"}}
    ).json()
    holder = PrivateKey.generate(holder_type)
    claims = readiness_claims(
        msme["identity_token"],
        781,
        credit_tier="A",
        income_bracket="25L-1Cr",
        debt_ratio_bracket="<0.2",
        verification_sources=["gstn", "aa_fetch"],
    )
    body = {
        "type": "CreditReadinessCredential",
        "subject": msme["identity_token"],
        "claims": claims,
        "holder_jwk": public_key_to_jwk(holder.public_key),
    }
    bad = client.post(
        "/v1/credentials", json={**body, "claims": {**claims, "credit_tier": "Z"}}, headers=as_admin
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "/credit_tier"
    assert client.post("/v1/credentials", json=body).status_code == 401
    issued = client.post("/v1/credentials", json=body, headers=as_admin)
    assert issued.status_code == 201, issued.text
    credential = issued.json()["credential"]
    # The score opening is only in a disclosure: the signed payload has neither it nor the score.
    signed = json.loads(b64url_decode(credential.split("~")[0].split(".")[1]))
    assert "score_opening" not in signed
    assert not [value for value in _leaves(signed) if value == 781]

    metadata = client.get("/.well-known/jwt-vc-issuer").json()
    assert metadata["jwks"]["keys"]

    def presentation(nonce: str, disclose: set[str]) -> str:
        return present(
            SdJwt.parse(credential),
            disclose=disclose,
            holder_signer=holder,
            audience=AUDIENCE,
            nonce=nonce,
            iat=int(runtime.clock.now().timestamp()),
        )

    nonce = secrets.token_urlsafe(12)
    shown = presentation(nonce, {"/income_bracket"})
    result = client.post(
        "/v1/presentations/verify",
        json={"presentation": shown, "audience": AUDIENCE, "nonce": nonce},
    )
    assert result.status_code == 200, result.text
    disclosed = result.json()["claims"]
    assert disclosed["income_bracket"] == "25L-1Cr"
    assert disclosed["credit_tier"] == "A"
    assert "score_opening" not in disclosed
    assert "debt_ratio_bracket" not in disclosed
    wrong_nonce = client.post(
        "/v1/presentations/verify",
        json={"presentation": shown, "audience": AUDIENCE, "nonce": "another-nonce"},
    )
    assert wrong_nonce.status_code == 400, wrong_nonce.text
    assert wrong_nonce.json()["code"] == "credential.kb_nonce_mismatch"

    credential_id = issued.json()["credential_id"]
    assert (
        client.post(f"/v1/credentials/{credential_id}/suspend", headers=as_admin).json()["status"]
        == "suspended"
    )
    suspended = client.post(
        "/v1/presentations/verify",
        json={"presentation": shown, "audience": AUDIENCE, "nonce": nonce},
    )
    assert suspended.json()["code"] == "credential.suspended"
    client.post(f"/v1/credentials/{credential_id}/reinstate", headers=as_admin)
    assert (
        client.post(
            "/v1/presentations/verify",
            json={"presentation": shown, "audience": AUDIENCE, "nonce": nonce},
        ).status_code
        == 200
    )
    client.post(f"/v1/credentials/{credential_id}/revoke", headers=as_admin)
    revoked = client.post(
        "/v1/presentations/verify",
        json={"presentation": shown, "audience": AUDIENCE, "nonce": nonce},
    )
    assert revoked.json()["code"] == "credential.revoked"

    # An erased subject gets nothing more.
    client.delete(
        f"/v1/identities/{msme['identity_token']}",
        headers={"Authorization": f"Bearer {msme['access_token']}"},
    )
    assert client.post("/v1/credentials", json=body, headers=as_admin).status_code == 409


def test_es256_issuer_key_resolvable_through_did_web(tmp_path: Path, backend_url: str) -> None:
    settings = make_settings(
        tmp_path,
        database_url=backend_url,
        issuer_key_type="P-256",
        public_url="https://issuer.example",
    )
    runtime = Runtime.build(settings)
    migrate(runtime.engine)
    try:
        with TestClient(create_app(settings, runtime=runtime)) as client:
            document = client.get("/.well-known/did.json").json()
            assert document["id"] == "did:web:issuer.example"
            jwks = client.get("/.well-known/jwt-vc-issuer").json()["jwks"]["keys"]
            assert [k["alg"] for k in jwks] == ["ES256"]

            # Resolve the key the way a remote verifier would: did:web -> https://issuer.example/.well-known/did.json
            served = httpx.MockTransport(lambda _r: httpx.Response(200, json=document))
            resolver = DidResolver(
                OutboundFetcher(transport=served, resolver=lambda _h: ["93.184.216.34"])
            )
            key = resolver.resolve_key(f"did:web:issuer.example#{jwks[0]['kid']}")

            with transaction(runtime.sessions) as session:
                admin, _ = issue_admin_token(session, runtime, "issuer-desk")
            msme = client.post(
                "/v1/identities", json={"profile": {"name": "ES256 Enterprise"}}
            ).json()
            holder = PrivateKey.generate(KeyType.ED25519)
            body = {
                "type": "CreditReadinessCredential",
                "subject": msme["identity_token"],
                "claims": readiness_claims(
                    msme["identity_token"],
                    420,
                    disclose_score=False,
                    credit_tier="C",
                    income_bracket="<1L",
                    debt_ratio_bracket=">0.6",
                    verification_sources=["itr"],
                ),
                "holder_jwk": public_key_to_jwk(holder.public_key),
            }
            credential = client.post(
                "/v1/credentials", json=body, headers={"Authorization": f"Bearer {admin}"}
            ).json()["credential"]
            header = json.loads(b64url_decode(credential.split(".")[0]))
            assert header["alg"] == "ES256"
            assert header["typ"] == "dc+sd-jwt"
            issuer_jwt = credential.split("~")[0]
            signing_input, signature = issuer_jwt.rsplit(".", 1)
            key.verify("ES256", signing_input.encode(), b64url_decode(signature))
    finally:
        runtime.close()


def test_w3c_vc_jwt_issue_verify_revoke(client: TestClient, runtime: Runtime) -> None:
    # Issue 16: W3C credentials are VCDM 2.0 secured as vc+jwt (VC-JOSE-COSE), so that their
    # BitstringStatusListEntry is used as W3C Bitstring Status List v1.0 requires.
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "issuer-desk")
    as_admin = {"Authorization": f"Bearer {admin}"}
    msme = client.post("/v1/identities", json={"profile": {"name": "VC JWT Traders"}}).json()
    holder = PrivateKey.generate(KeyType.ED25519)
    body = {
        "type": "CreditReadinessCredential",
        "subject": msme["identity_token"],
        "format": "vc+jwt",
        "claims": readiness_claims(
            msme["identity_token"],
            600,
            disclose_score=False,
            income_bracket="1L-5L",
            debt_ratio_bracket="0.4-0.6",
            verification_sources=["bank_statement"],
        ),
        "holder_jwk": public_key_to_jwk(holder.public_key),
    }
    issued = client.post("/v1/credentials", json=body, headers=as_admin)
    assert issued.status_code == 201, issued.text
    assert issued.json()["format"] == "vc+jwt"
    token = issued.json()["credential"]
    header = json.loads(b64url_decode(token.split(".")[0]))
    payload = json.loads(b64url_decode(token.split(".")[1]))
    assert (header["typ"], header["cty"]) == ("vc+jwt", "vc")
    assert "vc" not in payload  # the payload is the credential (VC-JOSE-COSE §3.1.3)
    assert payload["@context"][0] == "https://www.w3.org/ns/credentials/v2"
    assert payload["issuer"] == payload["iss"]
    entry = payload["credentialStatus"]
    assert entry["type"] == "BitstringStatusListEntry"
    assert entry["statusPurpose"] == "revocation"
    assert isinstance(entry["statusListIndex"], str)
    assert payload["credentialSubject"]["id"].startswith("did:key:z")
    # The list the entry names is a BitstringStatusListCredential secured the same way.
    published = client.get(entry["statusListCredential"].removeprefix("http://testserver"))
    assert published.headers["content-type"].startswith("application/vc+jwt")
    list_credential = json.loads(b64url_decode(published.text.split(".")[1]))
    assert "BitstringStatusListCredential" in list_credential["type"]
    assert list_credential["id"] == entry["statusListCredential"]
    assert list_credential["credentialSubject"]["statusPurpose"] == "revocation"

    verified = client.post("/v1/credentials/verify", json={"credential": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["claims"]["credit_tier"] == "B"
    assert verified.json()["format"] == "vc+jwt"
    assert verified.json()["holder"] == payload["credentialSubject"]["id"]
    # A changed signature is refused for what it is (checked while the credential is valid).
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    refused = client.post("/v1/credentials/verify", json={"credential": tampered})
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "key.signature_invalid"
    credential_id = issued.json()["credential_id"]
    # A revocation-only (bitstring) list cannot express suspension.
    assert (
        client.post(f"/v1/credentials/{credential_id}/suspend", headers=as_admin).status_code == 422
    )
    assert (
        client.post(f"/v1/credentials/{credential_id}/revoke", headers=as_admin).status_code == 200
    )
    revoked = client.post("/v1/credentials/verify", json={"credential": token})
    assert revoked.json()["code"] == "credential.revoked"
    # VCDM 1.1 JWTs are no longer issued: their status entry would break the W3C spec.
    old = client.post("/v1/credentials", json={**body, "format": "jwt_vc_json"}, headers=as_admin)
    assert old.status_code == 422, old.text


def test_a_score_opening_must_open_the_commitment(client: TestClient, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "issuer-desk")
    msme = client.post("/v1/identities", json={"profile": {"name": "Commitment Check"}}).json()
    # The opening (801) does not open the commitment (800).
    claims = readiness_claims(msme["identity_token"], 800, opening_score=801)
    body = {
        "type": "CreditReadinessCredential",
        "subject": msme["identity_token"],
        "claims": claims,
        "holder_jwk": public_key_to_jwk(PrivateKey.generate(KeyType.ED25519).public_key),
    }
    refused = client.post(
        "/v1/credentials", json=body, headers={"Authorization": f"Bearer {admin}"}
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "/score_opening"


def _opened_score(credential: str) -> tuple[str, dict[str, object]]:
    """The signed score commitment of an SD-JWT and its disclosed score opening."""
    parsed = SdJwt.parse(credential)
    (opening,) = [d.value for d in parsed.disclosures if d.name == "score_opening"]
    return str(parsed.payload["score_commitment"]), opening


@pytest.mark.parametrize("salt", [None, "issuer-chosen-salt-0123456789"])
def test_the_platform_commits_to_a_score_sent_without_a_commitment(
    client: TestClient, runtime: Runtime, salt: str | None
) -> None:
    # Seed 001 done by the platform: the issuer sends the score (with or without a salt),
    # the credential carries the commitment to it, and the disclosed opening opens it.
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "issuer-desk")
    msme = client.post("/v1/identities", json={"profile": {"name": "Score Only"}}).json()
    claims = readiness_claims(msme["identity_token"], 745)
    del claims["score_commitment"]
    claims["score_opening"] = {"score": 745} if salt is None else {"score": 745, "salt": salt}
    body = {
        "type": "CreditReadinessCredential",
        "subject": msme["identity_token"],
        "claims": claims,
        "holder_jwk": public_key_to_jwk(PrivateKey.generate(KeyType.ED25519).public_key),
    }
    issued = client.post("/v1/credentials", json=body, headers={"Authorization": f"Bearer {admin}"})
    assert issued.status_code == 201, issued.text
    commitment, opening = _opened_score(issued.json()["credential"])
    assert opening["score"] == 745
    if salt is not None:
        assert opening["salt"] == salt
    else:
        assert isinstance(opening["salt"], str)
        assert len(opening["salt"]) >= 22
    assert commitment == commit_score(745, str(opening["salt"]))
    # A second credential for the same score without a salt gets a fresh one.
    again = client.post("/v1/credentials", json=body, headers={"Authorization": f"Bearer {admin}"})
    assert again.status_code == 201, again.text
    if salt is None:
        assert _opened_score(again.json()["credential"])[0] != commitment


def test_an_offer_with_a_wrong_commitment_is_refused_when_made(
    client: TestClient, runtime: Runtime
) -> None:
    # Before, the offer was accepted and its redemption failed; now the issuer hears of it.
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "issuer-desk")
    as_admin = {"Authorization": f"Bearer {admin}"}
    msme = client.post("/v1/identities", json={"profile": {"name": "Offer Check"}}).json()
    token = msme["identity_token"]
    offer = {"type": "CreditReadinessCredential", "subject": token}
    wrong = readiness_claims(token, 800, opening_score=801)
    refused = client.post(
        "/v1/credential-offers", json={**offer, "claims": wrong}, headers=as_admin
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "credential.claims_invalid"
    assert refused.json()["errors"] == [
        {"field": "/score_opening", "message": "does not open /score_commitment"}
    ]
    score_only = readiness_claims(token, 650)
    del score_only["score_commitment"]
    del score_only["score_opening"]["salt"]
    made = client.post(
        "/v1/credential-offers", json={**offer, "claims": score_only}, headers=as_admin
    )
    assert made.status_code == 201, made.text
