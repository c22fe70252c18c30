"""did:key (Ed25519 and P-256) against the W3C CCG test vectors, with tampered siblings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import base58
import pytest

from credit_commons.core.encoding import b64url_decode
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.did_key import decode_did_key, did_key_document, encode_did_key
from credit_commons.keys.errors import DidInvalid
from credit_commons.keys.jwk import public_key_from_jwk, public_key_to_jwk

DIR = Path(__file__).parent / "keys" / "did-key"
ED = json.loads((DIR / "ed25519-x25519.json").read_text())
NIST = json.loads((DIR / "nist-curves.json").read_text())
P256 = {
    did: v
    for did, v in NIST.items()
    if did.startswith("did:key:zDn") and "publicKeyJwk" in v["verificationMethod"]
}


def test_vector_counts() -> None:
    assert len(ED) == 5
    assert len(P256) == 2


@pytest.mark.parametrize("did", sorted(ED))
def test_ed25519_seed_to_did_and_back(did: str) -> None:
    vector: dict[str, Any] = ED[did]
    key = PrivateKey.from_raw(KeyType.ED25519, bytes.fromhex(vector["seed"]))
    assert encode_did_key(key.public_key) == did
    pair = vector["verificationKeyPair"]
    # The vectors give the public key either as base58 or (JsonWebKey2020) as a JWK.
    if "publicKeyBase58" in pair:
        expected_raw = base58.b58decode(pair["publicKeyBase58"])
    else:
        expected_raw = public_key_from_jwk(pair["publicKeyJwk"]).raw()
    decoded = decode_did_key(did)
    assert decoded.raw() == expected_raw
    document = did_key_document(did)
    assert document["id"] == did
    method = document["verificationMethod"][0]
    assert method["id"] == vector["didDocument"]["verificationMethod"][0]["id"]
    assert public_key_from_jwk(method["publicKeyJwk"]).raw() == expected_raw
    assert document["assertionMethod"] == vector["didDocument"]["assertionMethod"]


@pytest.mark.parametrize("did", sorted(P256))
def test_p256_jwk_to_did_and_back(did: str) -> None:
    vector: dict[str, Any] = P256[did]
    jwk = vector["verificationMethod"]["publicKeyJwk"]
    key = public_key_from_jwk(jwk)
    assert encode_did_key(key) == did
    assert public_key_to_jwk(decode_did_key(did)) == {k: jwk[k] for k in ("kty", "crv", "x", "y")}
    private = vector["verificationMethod"]["privateKeyJwk"]
    signer = PrivateKey.from_raw(KeyType.P256, _b64url(private["d"]))
    assert encode_did_key(signer.public_key) == did
    document = did_key_document(did)
    expected = vector["didDocument"]
    assert document["verificationMethod"] == expected["verificationMethod"]
    for relation in ("assertionMethod", "authentication", "capabilityInvocation"):
        assert document[relation] == expected[relation]


def _b64url(text: str) -> bytes:
    return b64url_decode(text)


def _tampered(did: str) -> list[str]:
    data = base58.b58decode(did[len("did:key:z") :])
    flipped_codec = bytes([data[0] ^ 0x01]) + data[1:]
    truncated = data[:-1]
    extended = data + b"\x00"
    siblings = [
        "did:key:z" + base58.b58encode(v).decode() for v in (flipped_codec, truncated, extended)
    ]
    siblings += [
        did.replace("did:key:z", "did:key:m", 1),  # another multibase
        did.replace("did:key:", "did:example:", 1),
        did[:-1] + ("0" if did[-1] != "0" else "O"),  # characters outside base58btc
    ]
    return siblings


@pytest.mark.parametrize("did", sorted(ED) + sorted(P256))
def test_tampered_did_keys_are_rejected(did: str) -> None:
    for sibling in _tampered(did):
        with pytest.raises(DidInvalid):
            decode_did_key(sibling)


def test_p256_point_off_curve_is_rejected() -> None:
    did = sorted(P256)[0]
    data = bytearray(base58.b58decode(did[len("did:key:z") :]))
    data[-1] ^= 0x01  # for this vector, x then has no point on the curve
    sibling = "did:key:z" + base58.b58encode(bytes(data)).decode()
    with pytest.raises(DidInvalid):
        decode_did_key(sibling)
