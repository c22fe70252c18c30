"""Credentials issued before a change of public URL stay this platform's own (issue 12 item
12), on both databases: the instance restarted behind another URL still verifies them,
their status lists included, and still refuses an identifier it never used."""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi.testclient import TestClient
from tests.conftest import make_settings, migrate
from tests.factories import readiness_claims

from credit_commons.core.db import transaction
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.gateway.app import create_app
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer.identifiers import is_own_issuer, own_status_list_id
from credit_commons.issuer.sd_jwt import present
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime

FIRST = "http://127.0.0.1:8201"
LATER = "https://commons.example"
AUDIENCE = "https://lender.example/verifier"


def test_credentials_issued_before_a_new_public_url_still_verify(
    tmp_path: Path, backend_url: str
) -> None:
    settings = make_settings(tmp_path, database_url=backend_url, public_url=FIRST)
    first = Runtime.build(settings)
    migrate(first.engine)
    holder = PrivateKey.generate(KeyType.ED25519)
    with TestClient(create_app(settings, runtime=first)) as client:
        with transaction(first.sessions) as session:
            admin, _ = issue_admin_token(session, first, "issuer-desk")
        as_admin = {"Authorization": f"Bearer {admin}"}
        msme = client.post("/v1/identities", json={"profile": {"name": "Old URL Traders"}})
        token = msme.json()["identity_token"]
        issued = {}
        for fmt in ("dc+sd-jwt", "vc+jwt"):
            body = {
                "type": "CreditReadinessCredential",
                "subject": token,
                "format": fmt,
                "claims": readiness_claims(token, 640),
                "holder_jwk": public_key_to_jwk(holder.public_key),
            }
            response = client.post("/v1/credentials", json=body, headers=as_admin)
            assert response.status_code == 201, response.text
            issued[fmt] = response.json()

    later = make_settings(tmp_path, database_url=backend_url, public_url=LATER)
    with TestClient(create_app(later)) as client:
        runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        vc_jwt = issued["vc+jwt"]["credential"]
        verified = client.post("/v1/credentials/verify", json={"credential": vc_jwt})
        assert verified.status_code == 200, verified.text

        nonce = secrets.token_urlsafe(12)
        shown = present(
            SdJwt.parse(issued["dc+sd-jwt"]["credential"]),
            disclose={"/income_bracket"},
            holder_signer=holder,
            audience=AUDIENCE,
            nonce=nonce,
            iat=int(runtime.clock.now().timestamp()),
        )
        presented = {"presentation": shown, "audience": AUDIENCE, "nonce": nonce}
        result = client.post("/v1/presentations/verify", json=presented)
        assert result.status_code == 200, result.text
        assert result.json()["claims"]["iss"] == FIRST
        # The full node's shape too (gateway/node_app.py answers the same model).
        assert result.json()["issuer"] == FIRST
        assert result.json()["status_checked"] is True
        assert set(result.json()) == {"valid", "issuer", "vct", "claims", "status_checked"}

        # Their status lists are still this issuer's: a revocation under the new URL counts.
        with transaction(runtime.sessions) as session:
            admin, _ = issue_admin_token(session, runtime, "issuer-desk")
        as_admin = {"Authorization": f"Bearer {admin}"}
        for fmt in issued:
            credential_id = issued[fmt]["credential_id"]
            revoked = client.post(f"/v1/credentials/{credential_id}/revoke", headers=as_admin)
            assert revoked.status_code == 200, revoked.text
        again = client.post("/v1/credentials/verify", json={"credential": vc_jwt})
        assert again.json()["code"] == "credential.revoked"
        again = client.post("/v1/presentations/verify", json=presented)
        assert again.json()["code"] == "credential.revoked"

        # Only identifiers this instance used: not a look-alike, not a foreign status list.
        with transaction(runtime.read_sessions) as session:
            assert is_own_issuer(session, runtime, FIRST)
            assert is_own_issuer(session, runtime, LATER)
            assert not is_own_issuer(session, runtime, "http://127.0.0.1:8202")
            assert not is_own_issuer(session, runtime, FIRST + "/")
            assert own_status_list_id(session, runtime, f"{FIRST}/status-lists/sl_1") == "sl_1"
            assert (
                own_status_list_id(session, runtime, "https://evil.example/status-lists/x") is None
            )
            assert own_status_list_id(session, runtime, f"{FIRST}/status-lists/a/b") is None
