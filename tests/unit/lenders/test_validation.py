"""The lender registry's validators: JWK Sets, purposes, webhook URLs."""

from __future__ import annotations

import pytest

from credit_commons.core.errors import ValidationError
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk, thumbprint
from credit_commons.lenders import validate_jwks, validate_purposes, validate_webhook_url


def test_jwks_are_normalised() -> None:
    ed, ec = PrivateKey.generate(), PrivateKey.generate(KeyType.P256)
    jwks = validate_jwks(
        {"keys": [public_key_to_jwk(ed.public_key), public_key_to_jwk(ec.public_key, kid="ec")]}
    )
    assert [k["kid"] for k in jwks["keys"]] == [thumbprint(ed.public_key), "ec"]
    assert [(k["alg"], k["use"]) for k in jwks["keys"]] == [("EdDSA", "sig"), ("ES256", "sig")]
    # Ed25519 may also be named by its fully specified alg (RFC 9864).
    named = validate_jwks({"keys": [public_key_to_jwk(ed.public_key, alg="Ed25519")]})
    assert named["keys"][0]["alg"] == "Ed25519"
    for bad in (None, [], {"keys": "x"}, {"keys": [None]}, {"keys": [{}] * 11}):
        with pytest.raises(ValidationError):
            validate_jwks(bad)


def test_purposes_and_webhooks() -> None:
    assert validate_purposes(["105", "101", "agri.credit", "101"]) == ("101", "105", "agri.credit")
    for bad in ([], ["100"], ["ab"], ["x" * 42], [7], "101"):
        with pytest.raises(ValidationError):
            validate_purposes(bad)  # type: ignore[arg-type]
    assert validate_webhook_url(None) is None
    assert validate_webhook_url("https://93.184.216.34/h") == "https://93.184.216.34/h"
    assert validate_webhook_url("https://[::1]/h", allow_private=True) == "https://[::1]/h"
    for bad in ("https://[::1]/h", "https://169.254.169.254/", "https://l.example/#f", "https://"):
        with pytest.raises(ValidationError):
            validate_webhook_url(bad)
    with pytest.raises(ValidationError):
        validate_webhook_url("https://l.example/" + "a" * 2048)
