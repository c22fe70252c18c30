"""Issue 16, formats, on both databases: the Token Status List served in CWT form to a client
that asks for it, the W3C list as a VCDM 2.0 BitstringStatusListCredential, and the VCDM 1.1
credentials issued before VCDM 2.0 still verified (and revoked) as before."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from tests.factories import readiness_claims

from credit_commons import verifier
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_decode
from credit_commons.formats.status_list import TokenStatus
from credit_commons.formats.status_list_cwt import CWT_MEDIA_TYPE, verify_status_list_cwt
from credit_commons.formats.vc_jwt import issue_vc_jwt
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer import status
from credit_commons.keys import encode_did_key
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime
from credit_commons.verifier import CredentialRevoked


def test_a_token_list_is_served_as_a_cwt_when_asked(client: TestClient, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        ref = status.allocate(session, runtime, status.StatusKind.TOKEN)
        status.set_status(session, runtime, ref, TokenStatus.SUSPENDED)
        key = status.issuer_signer(session, runtime).public_key
        uri = status.status_uri(runtime, ref.list_id)
    path = f"/status-lists/{ref.list_id}"
    response = client.get(path, headers={"Accept": CWT_MEDIA_TYPE})
    assert response.status_code == 200
    assert response.headers["content-type"] == CWT_MEDIA_TYPE
    assert response.headers["vary"] == "Accept"
    now = runtime.clock.now().timestamp()
    token = verify_status_list_cwt(response.content, key, uri=uri, now=now)
    assert token.status_list.get(ref.index) == TokenStatus.SUSPENDED
    assert token.ttl is not None
    assert token.exp is not None
    assert token.exp > now
    # The JWT stays the default, and each form has its own ETag.
    default = client.get(path)
    assert default.headers["content-type"] == "application/statuslist+jwt"
    assert default.headers["etag"] != response.headers["etag"]
    preferred = client.get(
        path, headers={"Accept": f"application/statuslist+jwt;q=0.5, {CWT_MEDIA_TYPE}"}
    )
    assert preferred.headers["content-type"] == CWT_MEDIA_TYPE
    refused = client.get(
        path, headers={"Accept": f"application/statuslist+jwt, {CWT_MEDIA_TYPE};q=0"}
    )
    assert refused.headers["content-type"] == "application/statuslist+jwt"
    # A change is seen in the CWT form at once (a new version is a new rendering).
    with transaction(runtime.sessions) as session:
        status.set_status(session, runtime, ref, TokenStatus.INVALID)
    again = client.get(path, headers={"Accept": CWT_MEDIA_TYPE})
    changed = verify_status_list_cwt(again.content, key, uri=uri, now=now)
    assert changed.status_list.get(ref.index) == TokenStatus.INVALID
    cached = client.get(
        path, headers={"Accept": CWT_MEDIA_TYPE, "If-None-Match": again.headers["etag"]}
    )
    assert cached.status_code == 304


def test_a_bitstring_list_is_a_vcdm2_credential_and_has_no_cwt_form(
    client: TestClient, runtime: Runtime
) -> None:
    with transaction(runtime.sessions) as session:
        ref = status.allocate(session, runtime, status.StatusKind.BITSTRING)
    path = f"/status-lists/{ref.list_id}"
    response = client.get(path)
    assert response.headers["content-type"] == "application/vc+jwt"
    header = json.loads(b64url_decode(response.text.split(".")[0]))
    payload = json.loads(b64url_decode(response.text.split(".")[1]))
    assert (header["typ"], header["cty"]) == ("vc+jwt", "vc")
    assert payload["@context"] == ["https://www.w3.org/ns/credentials/v2"]
    assert payload["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert payload["credentialSubject"]["type"] == "BitstringStatusList"
    assert "vc" not in payload
    assert payload["validFrom"] < payload["validUntil"]
    only_cwt = client.get(path, headers={"Accept": CWT_MEDIA_TYPE})
    assert only_cwt.status_code == 406
    assert only_cwt.json()["code"] == "status_list.not_acceptable"


def test_vcdm_1_1_credentials_issued_before_keep_verifying(
    client: TestClient, runtime: Runtime
) -> None:
    # A jwt_vc_json as the platform issued it before VCDM 2.0: a vc claim whose entry points
    # into a bitstring list.  It verifies, and its revocation is seen, as before.
    subject = client.post("/v1/identities", json={"profile": {"name": "Old VC"}}).json()
    with transaction(runtime.sessions) as session:
        ref = status.allocate(session, runtime, status.StatusKind.BITSTRING)
        signer = status.issuer_signer(session, runtime)
    now = int(runtime.clock.now().timestamp())
    holder = PrivateKey.generate(KeyType.ED25519)
    claims = readiness_claims(subject["identity_token"], 640)
    old = issue_vc_jwt(
        type_name="CreditReadinessCredential",
        claims={k: v for k, v in claims.items() if k != "score_opening"},
        issuer=runtime.settings.public_url,
        holder_did=encode_did_key(holder.public_key),
        credential_id="urn:credit-commons:crd_old",
        status_uri=status.status_uri(runtime, ref.list_id),
        status_index=ref.index,
        iat=now,
        exp=now + 3600,
        signer=signer,
        kid=signer.kid,
    )
    verified = client.post("/v1/credentials/verify", json={"credential": old})
    assert verified.status_code == 200, verified.text
    assert verified.json()["format"] == "jwt_vc_json"
    with transaction(runtime.sessions) as session:
        status.set_status(session, runtime, ref, TokenStatus.INVALID)
    refused = client.post("/v1/credentials/verify", json={"credential": old})
    assert refused.json()["code"] == "credential.revoked"


def test_a_vcdm2_credential_is_refused_when_its_list_says_revoked(
    client: TestClient, runtime: Runtime
) -> None:
    # The 2.0 check reads the published BitstringStatusListCredential: the revocation is
    # seen through it (service level, both databases).
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "issuer-desk")
    subject = client.post("/v1/identities", json={"profile": {"name": "New VC"}}).json()
    holder = PrivateKey.generate(KeyType.P256)
    body = {
        "type": "CreditReadinessCredential",
        "subject": subject["identity_token"],
        "format": "vc+jwt",
        "claims": readiness_claims(subject["identity_token"], 700),
        "holder_jwk": public_key_to_jwk(holder.public_key),
    }
    as_admin = {"Authorization": f"Bearer {admin}"}
    issued = client.post("/v1/credentials", json=body, headers=as_admin).json()
    with transaction(runtime.read_sessions) as session:
        result = verifier.verify_vc_jwt_credential(session, runtime, issued["credential"])
    assert result.format == "vc+jwt"
    client.post(f"/v1/credentials/{issued['credential_id']}/revoke", headers=as_admin)
    with transaction(runtime.read_sessions) as session, pytest.raises(CredentialRevoked):
        verifier.verify_vc_jwt_credential(session, runtime, issued["credential"])
