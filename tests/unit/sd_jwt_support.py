"""Shared by the SD-JWT tests, issuance and presentation (``tests/unit/issuer/test_sd_jwt.py``)
and verification (``tests/unit/verifier/test_sd_jwt_verify.py``): fixed keys, a credential
with nested and array disclosures, and Issuer-signed JWTs crafted by hand so that each
breaks exactly one rule."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from itertools import count
from typing import Any

from credit_commons.core.encoding import b64url_encode
from credit_commons.formats.sd_jwt_format import b64_digest
from credit_commons.issuer.sd_jwt import (
    SdJwt,
    issue,
    present,
)
from credit_commons.keys.algorithms import KeyType, PrivateKey, PublicKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.verifier.sd_jwt_verify import Verified, verify

ISSUER = PrivateKey.from_raw(KeyType.ED25519, b"\x01" * 32)
HOLDER = PrivateKey.from_raw(KeyType.ED25519, b"\x02" * 32)
P256 = PrivateKey.from_raw(KeyType.P256, bytes(31) + b"\x05")
NOW = 1_700_000_000
AUD = "https://verifier.example"
NONCE = "abc123"

CLAIMS: dict[str, Any] = {
    "iss": "https://issuer.example",
    "iat": NOW - 100,
    "given_name": "Asha",
    "address": {"street": "MG Road 1", "city": "Pune", "country": "IN"},
    "nationalities": ["IN", "DE", "FR"],
    "score": {"commitment": "c0ffee", "opening": {"salt": "s", "value": 712}},
}
PATHS = [
    "/given_name",
    "/address",
    "/address/street",
    "/nationalities/0",
    "/nationalities/2",
    "/score/opening",
]


def counting_salts() -> Callable[[], str]:
    counter = count()
    return lambda: f"salt-{next(counter)}"


def resolve_issuer(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
    return ISSUER.public_key


def make_credential(**kwargs: Any) -> SdJwt:
    args: dict[str, Any] = {
        "disclosable": PATHS,
        "signer": ISSUER,
        "header": {"typ": "dc+sd-jwt"},
        "holder_jwk": public_key_to_jwk(HOLDER.public_key),
    }
    args.update(kwargs)
    return issue(CLAIMS, **args)


def verify_plain(text: str, **kwargs: Any) -> Verified:
    args: dict[str, Any] = {
        "issuer_key_resolver": resolve_issuer,
        "require_key_binding": False,
        "now": NOW,
    }
    args.update(kwargs)
    return verify(text, **args)


def present_with_kb(sd: SdJwt, disclose: Any, **kwargs: Any) -> str:
    args: dict[str, Any] = {"holder_signer": HOLDER, "audience": AUD, "nonce": NONCE, "iat": NOW}
    args.update(kwargs)
    return present(sd, disclose=disclose, **args)


def verify_with_kb(text: str, **kwargs: Any) -> Verified:
    args: dict[str, Any] = {"require_key_binding": True, "audience": AUD, "nonce": NONCE}
    args.update(kwargs)
    return verify_plain(text, **args)


# -- crafting Issuer-signed JWTs that break one rule each -----------------------------------


def segment(value: object) -> str:
    return b64url_encode(json.dumps(value).encode())


def signed_jwt(
    payload: object, header: Mapping[str, Any] | None = None, key: PrivateKey = ISSUER
) -> str:
    head = segment({"alg": key.alg, **(header or {})})
    body = payload if isinstance(payload, str) else segment(payload)
    signing_input = f"{head}.{body}"
    return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode()))}"


def raw_disclosure(*parts: object) -> str:
    return b64url_encode(json.dumps(list(parts)).encode())


def sha256_digest(encoded: str) -> str:
    return b64_digest("sha-256", encoded)


def crafted_sd_jwt(
    payload: object, *disclosures: str, header: Mapping[str, Any] | None = None
) -> str:
    return signed_jwt(payload, header) + "~" + "".join(d + "~" for d in disclosures)
