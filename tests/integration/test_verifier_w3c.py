"""W3C credentials presented in a VP-JWT (OpenID4VP 1.0 Appendix B.1, ``jwt_vc_json``) to
the OpenID4VP verifier, on SQLite and PostgreSQL: a VCDM 2.0 ``vc+jwt`` and a VCDM 1.1
``jwt_vc_json`` of this platform accepted through the same ten steps, and the denial
matrix's W3C cases — the holder's signature, nonce and audience of the VP-JWT, an
untrusted issuer, a revoked credential — each the uniform ``not_allowed`` toward the wallet
with the precise reason in the record and the event."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
from tests.factories import readiness_claims
from tests.integration.verifier_world import CRC, VpWorld, vp

from credit_commons.core.db import transaction
from credit_commons.formats import oid4vp
from credit_commons.formats.jws import sign_compact
from credit_commons.formats.status_list import TokenStatus
from credit_commons.formats.vc_jose import VCDM2_CONTEXT, datetime_stamp, secure_credential
from credit_commons.formats.vc_jwt import issue_vc_jwt
from credit_commons.issuer import status as issuer_status
from credit_commons.keys import encode_did_key
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk

__all__ = ["vp"]

DENIED = {"error": "not_allowed"}


def w3c_query(*claims: str, type_name: str = CRC) -> dict[str, Any]:
    """A DCQL query for a W3C credential of ``type_name`` (B.1: claims paths into the
    credential, so under ``credentialSubject``)."""
    return {
        "credentials": [
            {
                "id": "crc",
                "format": "jwt_vc_json",
                "meta": {"type_values": [[type_name]]},
                "claims": [
                    {"path": ["credentialSubject", c]} for c in claims or ("income_bracket",)
                ],
            }
        ]
    }


def _vc2(vp: VpWorld, holder: PrivateKey) -> tuple[str, str]:
    # A VCDM 2.0 vc+jwt issued by this platform to the did:key of ``holder``.
    made = vp.http.post("/v1/identities", json={"roles": ["business"], "profile": {"name": "W"}})
    token = made.json()["identity_token"]
    issued = vp.http.post(
        "/v1/credentials",
        json={
            "type": CRC,
            "subject": token,
            "format": "vc+jwt",
            "claims": readiness_claims(token),
            "holder_jwk": public_key_to_jwk(holder.public_key),
        },
        headers=vp.admin,
    )
    assert issued.status_code == 201, issued.text
    return issued.json()["credential"], issued.json()["credential_id"]


def _vc1(vp: VpWorld, holder: PrivateKey) -> tuple[str, Any]:
    # A VCDM 1.1 jwt_vc_json as the platform issued them before VCDM 2.0.
    with transaction(vp.rt.sessions) as session:
        ref = issuer_status.allocate(session, vp.rt, issuer_status.StatusKind.BITSTRING)
        signer = issuer_status.issuer_signer(session, vp.rt)
    claims = readiness_claims("tok-w3c-1", 640)
    credential = issue_vc_jwt(
        type_name=CRC,
        claims={k: v for k, v in claims.items() if k != "score_opening"},
        issuer=vp.rt.settings.public_url,
        holder_did=encode_did_key(holder.public_key),
        credential_id="urn:credit-commons:crd_w3c1",
        status_uri=issuer_status.status_uri(vp.rt, ref.list_id),
        status_index=ref.index,
        iat=vp.now(),
        exp=vp.now() + 3600,
        signer=signer,
        kid=signer.kid,
    )
    return credential, ref


def vp_jwt(
    credential: str,
    holder: PrivateKey,
    request: oid4vp.AuthorizationRequest,
    *,
    now: int,
    nonce: str | None = None,
    audience: str | None = None,
    signer: PrivateKey | None = None,
) -> str:
    """The holder's VP-JWT around ``credential`` for ``request`` (B.1.3.1.5)."""
    did = encode_did_key(holder.public_key)
    payload = {
        "iss": did,
        "aud": audience or request.client_id,
        "nonce": nonce or request.nonce,
        "iat": now,
        "jti": "urn:uuid:0f8b6f5c-4c2e-4b7e-9a51-3c5e9d2f1a77",
        "vp": {
            "@context": ["https://www.w3.org/2018/credentials/v1"],
            "type": ["VerifiablePresentation"],
            "verifiableCredential": [credential],
        },
    }
    header = {"typ": "JWT", "kid": f"{did}#{did.removeprefix('did:key:')}"}
    return sign_compact(header, payload, signer or holder)


def _present(
    vp: VpWorld, credential: str, holder: PrivateKey, **shown: Any
) -> tuple[dict[str, Any], httpx.Response]:
    created = vp.request(dcql_query=w3c_query())
    wallet = vp.wallet_request(created)
    text = vp_jwt(credential, holder, wallet, now=vp.now(), **shown)
    return created, vp.respond(created, wallet, {"crc": [text]})


def _denied(vp: VpWorld, created: dict[str, Any], answered: httpx.Response, reason: str) -> None:
    assert answered.status_code == 400, answered.text
    assert answered.json() == DENIED
    status = vp.status(created["id"])
    assert (status["state"], status["decision"], status["reason"]) == ("decided", "deny", reason)
    assert (vp.events()[-1]["decision"], vp.events()[-1]["reason"]) == ("deny", reason)


def _claims(vp: VpWorld, created: dict[str, Any], answered: httpx.Response) -> dict[str, Any]:
    assert answered.status_code == 200, answered.text
    code = answered.json()["redirect_uri"].split("response_code=")[1]
    decided = vp.decision(created["id"], code)
    assert decided.status_code == 200, decided.text
    (credential,) = decided.json()["credentials"]
    return dict(credential)


# -- accepted ------------------------------------------------------------------------------


def test_a_vcdm2_credential_in_a_vp_jwt_is_accepted(vp: VpWorld) -> None:
    holder = PrivateKey.generate(KeyType.P256)
    credential, _ = _vc2(vp, holder)
    created, answered = _present(vp, credential, holder)
    shown = _claims(vp, created, answered)
    assert (shown["format"], shown["vct"]) == ("jwt_vc_json", CRC)
    assert CRC in shown["types"]
    assert "income_bracket" in shown["claims"]
    assert "id" not in shown["claims"]


def test_a_vcdm1_1_credential_in_a_vp_jwt_is_accepted(vp: VpWorld) -> None:
    holder = PrivateKey.generate(KeyType.ED25519)
    credential, _ = _vc1(vp, holder)
    created, answered = _present(vp, credential, holder)
    assert _claims(vp, created, answered)["vct"] == CRC


def test_the_request_announces_jwt_vc_json(vp: VpWorld) -> None:
    created = vp.request(dcql_query=w3c_query())
    metadata = vp.wallet_request(created).client_metadata
    assert metadata is not None
    assert metadata.vp_formats_supported is not None
    assert "ES256" in metadata.vp_formats_supported["jwt_vc_json"]["alg_values"]


def test_a_foreign_did_key_issuer_on_the_trust_list_is_accepted(vp: VpWorld) -> None:
    issuer, holder = PrivateKey.generate(KeyType.ED25519), PrivateKey.generate(KeyType.ED25519)
    credential = _foreign_vc2(issuer, holder)
    added = vp.http.post(
        "/v1/admin/trusted-issuers",
        json={"issuer": encode_did_key(issuer.public_key)},
        headers=vp.admin,
    )
    assert added.status_code == 201, added.text
    created = vp.request(dcql_query=w3c_query("member", type_name="MembershipCredential"))
    wallet = vp.wallet_request(created)
    answered = vp.respond(
        created, wallet, {"crc": [vp_jwt(credential, holder, wallet, now=vp.now())]}
    )
    assert _claims(vp, created, answered)["claims"] == {"member": "yes"}


def _foreign_vc2(issuer: PrivateKey, holder: PrivateKey, **extra: Any) -> str:
    did = encode_did_key(issuer.public_key)
    credential = {
        "@context": [VCDM2_CONTEXT],
        "type": ["VerifiableCredential", "MembershipCredential"],
        "issuer": did,
        "validFrom": datetime_stamp(datetime.now(UTC)),
        "credentialSubject": {"id": encode_did_key(holder.public_key), "member": "yes"},
        **extra,
    }
    return secure_credential(
        credential, issuer, kid=f"{did}#{did.removeprefix('did:key:')}", iat=int(time.time())
    )


# -- the denial matrix's W3C cases ---------------------------------------------------------


def test_2_a_vp_jwt_signed_by_another_key(vp: VpWorld) -> None:
    holder = PrivateKey.generate(KeyType.P256)
    credential, _ = _vc2(vp, holder)
    created, answered = _present(vp, credential, holder, signer=PrivateKey.generate(KeyType.P256))
    _denied(vp, created, answered, "binding_invalid")


def test_2_a_vp_jwt_for_another_nonce(vp: VpWorld) -> None:
    holder = PrivateKey.generate(KeyType.P256)
    credential, _ = _vc2(vp, holder)
    created, answered = _present(vp, credential, holder, nonce="another-nonce-0123456789")
    _denied(vp, created, answered, "nonce_mismatch")


def test_2_a_vp_jwt_for_another_audience(vp: VpWorld) -> None:
    holder = PrivateKey.generate(KeyType.P256)
    credential, _ = _vc2(vp, holder)
    created, answered = _present(
        vp, credential, holder, audience="redirect_uri:https://x.example/r"
    )
    _denied(vp, created, answered, "aud_mismatch")


def test_2_a_vp_jwt_by_someone_who_is_not_the_subject(vp: VpWorld) -> None:
    holder, thief = PrivateKey.generate(KeyType.P256), PrivateKey.generate(KeyType.P256)
    credential, _ = _vc2(vp, holder)
    created, answered = _present(vp, credential, thief)
    _denied(vp, created, answered, "binding_invalid")


def test_3_a_w3c_credential_with_a_forged_issuer_signature(vp: VpWorld) -> None:
    holder = PrivateKey.generate(KeyType.P256)
    credential, _ = _vc2(vp, holder)
    head, payload, signature = credential.split(".")
    forged = ("A" if signature[5] != "A" else "B").join([signature[:5], signature[6:]])
    created, answered = _present(vp, f"{head}.{payload}.{forged}", holder)
    _denied(vp, created, answered, "signature_invalid")


def test_6_a_w3c_credential_of_an_untrusted_issuer(vp: VpWorld) -> None:
    issuer, holder = PrivateKey.generate(KeyType.ED25519), PrivateKey.generate(KeyType.ED25519)
    created = vp.request(dcql_query=w3c_query("member", type_name="MembershipCredential"))
    wallet = vp.wallet_request(created)
    shown = vp_jwt(_foreign_vc2(issuer, holder), holder, wallet, now=vp.now())
    _denied(vp, created, vp.respond(created, wallet, {"crc": [shown]}), "issuer_not_trusted")


def test_9_a_revoked_vcdm2_credential(vp: VpWorld) -> None:
    holder = PrivateKey.generate(KeyType.P256)
    credential, credential_id = _vc2(vp, holder)
    revoked = vp.http.post(f"/v1/credentials/{credential_id}/revoke", headers=vp.admin)
    assert revoked.status_code == 200, revoked.text
    created, answered = _present(vp, credential, holder)
    _denied(vp, created, answered, "revoked")


def test_9_a_revoked_vcdm1_1_credential(vp: VpWorld) -> None:
    holder = PrivateKey.generate(KeyType.ED25519)
    credential, ref = _vc1(vp, holder)
    with transaction(vp.rt.sessions) as session:
        issuer_status.set_status(session, vp.rt, ref, TokenStatus.INVALID)
    created, answered = _present(vp, credential, holder)
    _denied(vp, created, answered, "revoked")


def test_9_a_foreign_w3c_status_entry_cannot_be_checked(vp: VpWorld) -> None:
    issuer, holder = PrivateKey.generate(KeyType.ED25519), PrivateKey.generate(KeyType.ED25519)
    entry = {
        "id": "https://other.example/status/1#5",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "5",
        "statusListCredential": "https://other.example/status/1",
    }
    credential = _foreign_vc2(issuer, holder, credentialStatus=entry)
    vp.http.post(
        "/v1/admin/trusted-issuers",
        json={"issuer": encode_did_key(issuer.public_key)},
        headers=vp.admin,
    )
    created = vp.request(dcql_query=w3c_query("member", type_name="MembershipCredential"))
    wallet = vp.wallet_request(created)
    shown = vp_jwt(credential, holder, wallet, now=vp.now())
    _denied(vp, created, vp.respond(created, wallet, {"crc": [shown]}), "status_unchecked")


def test_dcql_a_w3c_credential_of_another_type(vp: VpWorld) -> None:
    holder = PrivateKey.generate(KeyType.P256)
    credential, _ = _vc2(vp, holder)
    created = vp.request(dcql_query=w3c_query(type_name="OtherCredential"))
    wallet = vp.wallet_request(created)
    shown = vp_jwt(credential, holder, wallet, now=vp.now())
    _denied(vp, created, vp.respond(created, wallet, {"crc": [shown]}), "dcql_unsatisfied")
