"""`POST /v1/credentials/verify` for an issuer-signed SD-JWT VC without key binding (issue 14
item 2), on SQLite and PostgreSQL: the caller says so explicitly; an SD-JWT with a KB-JWT
sent there, and one without sent to `/v1/presentations/verify`, are refused with distinct
problems; the route keeps its rate limits."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import make_settings, migrate
from tests.factories import readiness_claims

from credit_commons.core.db import transaction
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.gateway.app import create_app
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer.sd_jwt import present
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime

SD_JWT = {"format": "dc+sd-jwt", "key_binding": "none"}


class Issued:
    """A credential issued to a fresh borrower, with its holder key and an admin header."""

    def __init__(self, client: TestClient, runtime: Runtime) -> None:
        with transaction(runtime.sessions) as session:
            admin, _ = issue_admin_token(session, runtime, "issuer-desk")
        self.as_admin = {"Authorization": f"Bearer {admin}"}
        msme = client.post("/v1/identities", json={"profile": {"name": "Kaveri Looms"}}).json()
        self.holder = PrivateKey.generate(KeyType.ED25519)
        issued = client.post(
            "/v1/credentials",
            json={
                "type": "CreditReadinessCredential",
                "subject": msme["identity_token"],
                "claims": readiness_claims(msme["identity_token"], 702, credit_tier="B"),
                "holder_jwk": public_key_to_jwk(self.holder.public_key),
            },
            headers=self.as_admin,
        )
        assert issued.status_code == 201, issued.text
        self.id = str(issued.json()["credential_id"])
        self.text = str(issued.json()["credential"])


@pytest.fixture
def issued(client: TestClient, runtime: Runtime) -> Issued:
    return Issued(client, runtime)


def _verify(client: TestClient, credential: str, **body: Any) -> Any:
    return client.post("/v1/credentials/verify", json={"credential": credential, **body})


def test_an_issuer_signed_sd_jwt_verifies_when_the_caller_expects_no_key_binding(
    client: TestClient, issued: Issued
) -> None:
    assert issued.text.endswith("~")  # issuer-signed JWT and Disclosures, no KB-JWT
    verified = _verify(client, issued.text, **SD_JWT)
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert body["valid"] is True
    assert body["claims"]["credit_tier"] == "B"
    assert "cnf" not in body["claims"]
    assert "status" not in body["claims"]
    # Selective disclosure: the issuer-signed JWT alone (no Disclosures) verifies too, and
    # shows only what is always visible.
    bare = issued.text.split("~")[0] + "~"
    alone = _verify(client, bare, **SD_JWT)
    assert alone.status_code == 200, alone.text
    assert "income_bracket" not in alone.json()["claims"]


def test_the_expectation_must_be_explicit(client: TestClient, issued: Issued) -> None:
    # No format: the jwt_vc_json verifier refuses an SD-JWT, as before.
    assert _verify(client, issued.text).status_code == 400
    for body in (
        {"format": "dc+sd-jwt"},
        {"format": "dc+sd-jwt", "key_binding": "required"},
        {"format": "jwt_vc_json", "key_binding": "none"},
        {"format": "sd-jwt", "key_binding": "none"},
    ):
        refused = _verify(client, issued.text, **body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["code"] == "request.invalid"


def test_key_binding_mismatches_are_distinct_problems(client: TestClient, issued: Issued) -> None:
    nonce, audience = secrets.token_urlsafe(12), "https://lender.example/verifier"
    with_kb = present(
        SdJwt.parse(issued.text),
        disclose={"/income_bracket"},
        holder_signer=issued.holder,
        audience=audience,
        nonce=nonce,
        iat=int(time.time()),
    )
    # A presentation (with a KB-JWT) sent where none is expected.
    unexpected = _verify(client, with_kb, **SD_JWT)
    assert unexpected.status_code == 400, unexpected.text
    assert unexpected.json()["code"] == "credential.key_binding_unexpected"
    # An SD-JWT without one sent where key binding is mandatory.
    missing = client.post(
        "/v1/presentations/verify",
        json={"presentation": issued.text, "audience": audience, "nonce": nonce},
    )
    assert missing.status_code == 400, missing.text
    assert missing.json()["code"] == "credential.key_binding_missing"
    # The presentation still verifies where it belongs.
    presented = client.post(
        "/v1/presentations/verify",
        json={"presentation": with_kb, "audience": audience, "nonce": nonce},
    )
    assert presented.status_code == 200, presented.text


def test_tampering_and_revocation_are_refused(
    client: TestClient, issued: Issued, runtime: Runtime
) -> None:
    jwt, *disclosures, _ = issued.text.split("~")
    # A Disclosure of another credential (or an altered one) has no digest in _sd.
    forged = SdJwt.parse(Issued(client, runtime).text).disclosures[0]
    swapped = "~".join([jwt, forged.encoded, *disclosures[1:]]) + "~"
    refused = _verify(client, swapped, **SD_JWT)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "credential.disclosure_unreferenced"
    header, payload, signature = jwt.split(".")
    other = "AAAA" if signature[-4:] != "AAAA" else "BBBB"
    resigned = f"{header}.{payload}.{signature[:-4]}{other}"
    bad_signature = _verify(client, "~".join([resigned, *disclosures]) + "~", **SD_JWT)
    assert bad_signature.json()["code"] == "credential.signature_invalid"
    assert (
        client.post(f"/v1/credentials/{issued.id}/revoke", headers=issued.as_admin).status_code
        == 200
    )
    revoked = _verify(client, issued.text, **SD_JWT)
    assert revoked.status_code == 400
    assert revoked.json()["code"] == "credential.revoked"


@pytest.fixture
def limited(tmp_path: Path, backend_url: str) -> Iterator[tuple[TestClient, Runtime]]:
    settings = make_settings(
        tmp_path,
        database_url=backend_url,
        rate_limits={"verification.ip": "3/minute", "issuance.ip": "100/minute"},
    )
    rt = Runtime.build(settings)
    migrate(rt.engine)
    try:
        with TestClient(create_app(settings, runtime=rt)) as http:
            yield http, rt
    finally:
        rt.close()


def test_the_sd_jwt_route_is_rate_limited_like_its_neighbour(
    limited: tuple[TestClient, Runtime],
) -> None:
    http, rt = limited
    issued = Issued(http, rt)
    answers = [_verify(http, issued.text, **SD_JWT) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].headers["X-RateLimit-Limit"] == "3"
    # The group counts both formats and presentations together.
    refused = http.post(
        "/v1/presentations/verify",
        json={"presentation": issued.text, "audience": "https://a.example", "nonce": "n" * 8},
    )
    assert refused.status_code == 429
    assert refused.json()["code"] == "request.rate_limited"
