"""``did:key`` for Ed25519 and P-256 (W3C CCG did:key method, v0.7).

A did:key is ``did:key:z`` + base58btc(multicodec varint || public key): multicodec
``0xed`` (``ed-pub``) with the 32-byte key for Ed25519, ``0x1200`` (``p256-pub``) with the
33-byte compressed SEC1 point for P-256.  Resolution builds the DID document locally.
"""

from __future__ import annotations

import base58

from credit_commons.core.encoding import JsonObject
from credit_commons.keys.algorithms import KeyType, PublicKey
from credit_commons.keys.errors import DidInvalid, KeyInvalid
from credit_commons.keys.jwk import public_key_to_jwk

__all__ = ["decode_did_key", "did_key_document", "encode_did_key"]

# Multicodec table (multiformats/multicodec): unsigned varints of 0xed and 0x1200.
_PREFIX = {KeyType.ED25519: b"\xed\x01", KeyType.P256: b"\x80\x24"}
_LENGTH = {KeyType.ED25519: 32, KeyType.P256: 33}
_METHOD = "did:key:"


def encode_did_key(key: PublicKey) -> str:
    """The ``did:key`` of ``key``."""
    return _METHOD + "z" + base58.b58encode(_PREFIX[key.key_type] + key.raw()).decode("ascii")


def decode_did_key(did: str) -> PublicKey:
    """The public key inside a ``did:key`` (a DID URL fragment is ignored).

    Raises :class:`DidInvalid` for another method, a multibase other than ``z``, an
    unsupported multicodec, a wrong key length or an invalid point.
    """
    if not isinstance(did, str) or not did.startswith(_METHOD):
        raise DidInvalid("not a did:key")
    identifier = did[len(_METHOD) :].split("#", 1)[0]
    if not identifier.startswith("z") or len(identifier) > 128:
        raise DidInvalid("did:key must be base58btc multibase ('z')")
    try:
        data = base58.b58decode(identifier[1:])
    except ValueError as e:
        raise DidInvalid("did:key is not valid base58btc") from e
    if base58.b58encode(data).decode("ascii") != identifier[1:]:
        raise DidInvalid("did:key is not canonical base58btc")
    for key_type, prefix in _PREFIX.items():
        if data.startswith(prefix):
            raw = data[len(prefix) :]
            if len(raw) != _LENGTH[key_type]:
                raise DidInvalid(f"{key_type} did:key has the wrong key length")
            try:
                return PublicKey.from_raw(key_type, raw)
            except KeyInvalid as e:
                raise DidInvalid("did:key does not hold a valid public key") from e
    raise DidInvalid("did:key multicodec is not Ed25519 or P-256")


def did_key_document(did: str) -> JsonObject:
    """Resolve a ``did:key`` to its DID document (one ``JsonWebKey2020`` method).

    Raises :class:`DidInvalid`.
    """
    key = decode_did_key(did)
    did = did.split("#", 1)[0]
    vm_id = f"{did}#{did[len(_METHOD) :]}"
    method = {
        "id": vm_id,
        "type": "JsonWebKey2020",
        "controller": did,
        "publicKeyJwk": public_key_to_jwk(key),
    }
    return {
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/suites/jws-2020/v1",
        ],
        "id": did,
        "verificationMethod": [method],
        "assertionMethod": [vm_id],
        "authentication": [vm_id],
        "capabilityInvocation": [vm_id],
        "capabilityDelegation": [vm_id],
    }
