"""formats/vp_jwt.py: a VP-JWT's shape (refused before any key is looked up) and its
verification (the holder's signature, then nonce, audience and freshness), with a tampered
sibling for each check."""

from __future__ import annotations

from typing import Any

import pytest

from credit_commons.formats.jws import sign_compact
from credit_commons.formats.vp_jwt import (
    VpAudienceMismatch,
    VpJwtInvalid,
    VpNonceMismatch,
    VpSignatureInvalid,
    VpStale,
    parse_vp_jwt,
    verify_vp_jwt,
)
from credit_commons.keys import ACCEPTED_ALGS, encode_did_key
from credit_commons.keys.algorithms import KeyType, PrivateKey

NOW = 1_800_000_000
HOLDER = PrivateKey.generate(KeyType.P256)
DID = encode_did_key(HOLDER.public_key)
KID = f"{DID}#{DID.removeprefix('did:key:')}"
VC = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"


def _payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "iss": DID,
        "aud": "decentralized_identifier:did:web:commons.test",
        "nonce": "n-0123456789",
        "iat": NOW,
        "vp": {
            "@context": ["https://www.w3.org/2018/credentials/v1"],
            "type": ["VerifiablePresentation"],
            "verifiableCredential": [VC],
        },
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def _token(
    payload: dict[str, Any], header: dict[str, Any] | None = None, key: PrivateKey = HOLDER
) -> str:
    return sign_compact(header or {"typ": "JWT", "kid": KID}, payload, key)


def _verify(token: str, **changes: Any) -> None:
    vp = parse_vp_jwt(token, algs=ACCEPTED_ALGS)
    args: dict[str, Any] = {
        "audience": "decentralized_identifier:did:web:commons.test",
        "nonce": "n-0123456789",
        "now": NOW,
    }
    args.update(changes)
    verify_vp_jwt(vp, HOLDER.public_key, **args)


def test_a_vp_jwt_verifies_and_names_its_holder_and_credential() -> None:
    token = _token(_payload())
    vp = parse_vp_jwt(token, algs=ACCEPTED_ALGS)
    assert (vp.holder, vp.kid, vp.credential) == (DID, KID, VC)
    _verify(token)
    _verify(_token(_payload(aud=["other", "decentralized_identifier:did:web:commons.test"])))


@pytest.mark.parametrize(
    ("payload", "header"),
    [
        (_payload(vp=None), None),
        (_payload(vp={**_payload()["vp"], "verifiableCredential": [VC, VC]}), None),
        (_payload(vp={**_payload()["vp"], "verifiableCredential": [{"a": 1}]}), None),
        (
            _payload(vp={**_payload()["vp"], "@context": ["https://www.w3.org/ns/credentials/v2"]}),
            None,
        ),
        (_payload(vp={**_payload()["vp"], "type": ["VerifiableCredential"]}), None),
        (_payload(iss="https://holder.example"), None),
        (_payload(), {"typ": "JWT", "kid": "did:key:zOther#k"}),
        (_payload(), {"typ": "JWT", "kid": DID}),
        (_payload(), {"typ": "vp+jwt", "kid": KID}),
        (_payload(vp={**_payload()["vp"], "holder": "did:key:zOther"}), None),
    ],
)
def test_a_malformed_vp_jwt_is_refused_by_its_shape(
    payload: dict[str, Any], header: dict[str, Any] | None
) -> None:
    with pytest.raises(VpJwtInvalid):
        parse_vp_jwt(_token(payload, header), algs=ACCEPTED_ALGS)


def test_an_embedded_key_or_junk_is_refused() -> None:
    for token in ("not a jwt", "a.b", _token(_payload(), {"typ": "JWT", "kid": KID, "jwk": {}})):
        with pytest.raises(VpJwtInvalid):
            parse_vp_jwt(token, algs=ACCEPTED_ALGS)


@pytest.mark.parametrize(
    ("token", "changes", "error"),
    [
        (_token(_payload(), key=PrivateKey.generate(KeyType.P256)), {}, VpSignatureInvalid),
        (_token(_payload(nonce="other")), {}, VpNonceMismatch),
        (_token(_payload(nonce=None)), {}, VpNonceMismatch),
        (_token(_payload(aud="redirect_uri:https://x.example")), {}, VpAudienceMismatch),
        (_token(_payload(iat=NOW - 600)), {}, VpStale),
        (_token(_payload(iat=NOW + 600)), {}, VpStale),
        (_token(_payload(iat=None)), {}, VpStale),
        (_token(_payload(exp=NOW - 600)), {}, VpStale),
        (_token(_payload(iat=True)), {}, VpJwtInvalid),
    ],
)
def test_a_tampered_vp_jwt_is_refused(
    token: str, changes: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        _verify(token, **changes)


def test_the_signature_is_checked_before_the_nonce() -> None:
    # A presentation for another nonce signed by someone else is a signature failure: an
    # unverified nonce decides nothing.
    forged = _token(_payload(nonce="other"), key=PrivateKey.generate(KeyType.P256))
    with pytest.raises(VpSignatureInvalid):
        _verify(forged)
