"""W3C VCDM 2.0 secured as ``vc+jwt`` (VC-JOSE-COSE §3.1): what is signed verifies, and each
rule of the specification refuses what breaks it; a 1.1 credential and a 2.0 one are each
refused by the other's verifier."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.formats.jws import JwsInvalid, sign_compact
from credit_commons.formats.vc_jose import (
    VCDM1_CONTEXT,
    VCDM2_CONTEXT,
    VcJoseInvalid,
    datetime_stamp,
    secure_credential,
    verify_vc_jose,
)
from credit_commons.formats.vc_jwt import VcJwtExpired, VcJwtInvalid, issue_vc_jwt, verify_vc_jwt
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType, PrivateKey
from credit_commons.keys.errors import SignatureInvalid

NOW = 1_800_000_000
ISSUER = "https://issuer.example"
KEYS = {kind: PrivateKey.generate(kind) for kind in (KeyType.ED25519, KeyType.P256)}
KEY = KEYS[KeyType.ED25519]


def credential(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "@context": [VCDM2_CONTEXT],
        "id": "urn:credit-commons:crd_1",
        "type": ["VerifiableCredential", "CreditReadinessCredential"],
        "issuer": ISSUER,
        "validFrom": datetime_stamp(datetime.fromtimestamp(NOW - 3600, UTC)),
        "validUntil": datetime_stamp(datetime.fromtimestamp(NOW + 3600, UTC)),
        "credentialSubject": {"id": "did:key:z6Mkexample", "credit_tier": "B"},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def raw_token(payload: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """A vc+jwt signed without secure_credential's shape check (for tampered siblings)."""
    head = {"typ": "vc+jwt", "cty": "vc", "kid": "k1"} if header is None else header
    return sign_compact(head, payload, KEY)


def verify(token: str, key: PrivateKey = KEY, now: int = NOW) -> Any:
    return verify_vc_jose(token, key.public_key, algs=ACCEPTED_ALGS, now=now)


@pytest.mark.parametrize("kind", list(KEYS))
def test_a_secured_credential_verifies_and_is_the_payload(kind: KeyType) -> None:
    token = secure_credential(credential(), KEYS[kind], kid="k1", iat=NOW)
    header = json.loads(b64url_decode(token.split(".")[0]))
    assert (header["typ"], header["cty"], header["kid"]) == ("vc+jwt", "vc", "k1")
    secured = verify(token, KEYS[kind])
    assert secured.issuer == ISSUER
    assert secured.types == ("VerifiableCredential", "CreditReadinessCredential")
    assert secured.subject["credit_tier"] == "B"
    assert secured.credential["iss"] == ISSUER  # iss repeats the issuer, never contradicts it
    assert "vc" not in secured.credential


def test_an_issuer_object_and_the_full_media_type_are_accepted() -> None:
    payload = credential(issuer={"id": ISSUER, "name": "Issuer"})
    header = {"typ": "application/vc+jwt", "cty": "application/vc", "kid": "k1"}
    assert verify(raw_token(payload, header)).issuer == ISSUER
    assert verify(raw_token(credential(), {"typ": "vc+jwt"})).issuer == ISSUER  # no cty


TAMPERED: dict[str, Callable[[], str]] = {
    "typ JWT": lambda: raw_token(credential(), {"typ": "JWT", "kid": "k1"}),
    "no typ": lambda: raw_token(credential(), {"kid": "k1"}),
    "cty vp": lambda: raw_token(credential(), {"typ": "vc+jwt", "cty": "vp"}),
    "vc claim": lambda: raw_token({**credential(), "vc": credential()}),
    "vp claim": lambda: raw_token({**credential(), "vp": {}}),
    "1.1 context first": lambda: raw_token(credential(**{"@context": [VCDM1_CONTEXT]})),
    "1.1 context besides": lambda: raw_token(
        credential(**{"@context": [VCDM2_CONTEXT, VCDM1_CONTEXT]})
    ),
    "v2 context second": lambda: raw_token(
        credential(**{"@context": ["https://example.org/ctx", VCDM2_CONTEXT]})
    ),
    "context a string": lambda: raw_token(credential(**{"@context": VCDM2_CONTEXT})),
    "no VerifiableCredential": lambda: raw_token(credential(type=["CreditReadinessCredential"])),
    "type not strings": lambda: raw_token(credential(type=["VerifiableCredential", 7])),
    "issuer not a URL": lambda: raw_token(credential(issuer="issuer")),
    "issuer object without id": lambda: raw_token(credential(issuer={"name": "x"})),
    "iss contradicts issuer": lambda: raw_token({**credential(), "iss": "https://other.example"}),
    "no subject": lambda: raw_token(credential(credentialSubject=None)),
    "subject a list": lambda: raw_token(credential(credentialSubject=[{"id": "did:key:z"}])),
    "validFrom without timezone": lambda: raw_token(credential(validFrom="2027-01-15T08:00:00")),
    "validFrom a date": lambda: raw_token(credential(validFrom="2027-01-15")),
    "validFrom month 13": lambda: raw_token(credential(validFrom="2027-13-15T08:00:00Z")),
    "validUntil before validFrom": lambda: raw_token(
        credential(validFrom="2030-01-01T00:00:00Z", validUntil="2029-01-01T00:00:00Z")
    ),
    "exp a string": lambda: raw_token({**credential(), "exp": "soon"}),
    "embedded jwk": lambda: raw_token(
        credential(), {"typ": "vc+jwt", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AA"}}
    ),
}


@pytest.mark.parametrize("make", TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_credentials_are_refused(make: Callable[[], str]) -> None:
    with pytest.raises(VcJoseInvalid):
        verify(make())


@pytest.mark.parametrize(
    ("payload", "now"),
    [
        (credential(), NOW + 3600 + 61),  # validUntil passed (beyond the leeway)
        (credential(), NOW - 3600 - 61),  # validFrom not reached
        ({**credential(), "exp": NOW - 61}, NOW),
        ({**credential(), "nbf": NOW + 61}, NOW),
    ],
)
def test_outside_the_validity_period_is_refused(payload: dict[str, Any], now: int) -> None:
    with pytest.raises(VcJwtExpired):
        verify(raw_token(payload), now=now)


def test_signature_key_and_algorithm_are_checked() -> None:
    token = secure_credential(credential(), KEY, kid="k1")
    head, body, signature = token.split(".")
    flipped = b64url_decode(signature)
    flipped = bytes([flipped[0] ^ 1]) + flipped[1:]
    with pytest.raises(SignatureInvalid):
        verify(f"{head}.{body}.{b64url_encode(flipped)}")
    with pytest.raises(SignatureInvalid):
        verify(token, PrivateKey.generate(KeyType.ED25519))
    changed = b64url_encode(json.dumps({**credential(), "iss": ISSUER, "x": 1}).encode())
    with pytest.raises(SignatureInvalid):
        verify(f"{head}.{changed}.{signature}")
    none = b64url_encode(json.dumps({"alg": "none", "typ": "vc+jwt"}).encode())
    with pytest.raises(JwsInvalid):
        verify(f"{none}.{body}.")


def test_the_platform_never_signs_a_malformed_credential() -> None:
    for bad in (credential(**{"@context": [VCDM1_CONTEXT]}), credential(issuer="nobody")):
        with pytest.raises(VcJoseInvalid):
            secure_credential(bad, KEY, kid="k1")


def test_versions_refuse_each_other() -> None:
    # A 1.1 JWT is no vc+jwt: its typ is JWT and it carries a vc claim.
    old = issue_vc_jwt(
        type_name="CreditReadinessCredential",
        claims={"credit_tier": "B"},
        issuer=ISSUER,
        holder_did="did:key:z6Mkexample",
        credential_id="urn:x:1",
        status_uri=f"{ISSUER}/status-lists/sl_1",
        status_index=3,
        iat=NOW,
        exp=NOW + 60,
        signer=KEY,
        kid="k1",
    )
    assert verify_vc_jwt(old, KEY.public_key, algs=ACCEPTED_ALGS, now=NOW)["vc"]
    with pytest.raises(VcJoseInvalid):
        verify(old)
    with pytest.raises(VcJoseInvalid):  # the same payload under a vc+jwt header
        verify(raw_token(json.loads(b64url_decode(old.split(".")[1]))))
    # A 2.0 credential is no 1.1 one: not as a vc+jwt, and not inside a vc claim either.
    with pytest.raises(VcJwtInvalid):
        verify_vc_jwt(
            secure_credential(credential(), KEY, kid="k1"),
            KEY.public_key,
            algs=ACCEPTED_ALGS,
            now=NOW,
        )
    smuggled = sign_compact(
        {"typ": "JWT", "kid": "k1"},
        {"iss": ISSUER, "exp": NOW + 60, "vc": credential()},
        KEY,
    )
    with pytest.raises(VcJwtInvalid):
        verify_vc_jwt(smuggled, KEY.public_key, algs=ACCEPTED_ALGS, now=NOW)
    mixed = json.loads(b64url_decode(old.split(".")[1]))
    mixed["vc"]["@context"] = [VCDM1_CONTEXT, VCDM2_CONTEXT]
    with pytest.raises(VcJwtInvalid):
        verify_vc_jwt(
            sign_compact({"typ": "JWT"}, mixed, KEY), KEY.public_key, algs=ACCEPTED_ALGS, now=NOW
        )
