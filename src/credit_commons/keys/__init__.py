"""Signing keys (Ed25519, P-256), the JOSE algorithm policy, JWK, DIDs and the key store."""

from credit_commons.keys.algorithms import (
    ACCEPTED_ALGS,
    KeyType,
    PrivateKey,
    PublicKey,
    Signer,
    check_alg,
)
from credit_commons.keys.did_key import decode_did_key, did_key_document, encode_did_key
from credit_commons.keys.did_web import (
    DidResolver,
    did_web_url,
    method_key,
    verification_method_key,
)
from credit_commons.keys.errors import (
    AlgorithmNotAllowed,
    DidInvalid,
    DidResolutionFailed,
    KeyDecryptionFailed,
    KeyExists,
    KeyInvalid,
    KeyNotFound,
    KeyTypeMismatch,
    KmsConfigInvalid,
    KmsUnavailable,
    SignatureInvalid,
)
from credit_commons.keys.jwk import (
    private_key_from_jwk,
    private_key_to_jwk,
    public_key_from_jwk,
    public_key_to_jwk,
    thumbprint,
)
from credit_commons.keys.master import MasterKeyring
from credit_commons.keys.pkcs11 import Pkcs11Token
from credit_commons.keys.store import EmbeddedKeyStore, KeyStore, KeyVersion, StoredSigner

__all__ = [
    "ACCEPTED_ALGS",
    "AlgorithmNotAllowed",
    "DidInvalid",
    "DidResolutionFailed",
    "DidResolver",
    "EmbeddedKeyStore",
    "KeyDecryptionFailed",
    "KeyExists",
    "KeyInvalid",
    "KeyNotFound",
    "KeyStore",
    "KeyType",
    "KeyTypeMismatch",
    "KeyVersion",
    "KmsConfigInvalid",
    "KmsUnavailable",
    "MasterKeyring",
    "Pkcs11Token",
    "PrivateKey",
    "PublicKey",
    "SignatureInvalid",
    "Signer",
    "StoredSigner",
    "check_alg",
    "decode_did_key",
    "did_key_document",
    "did_web_url",
    "encode_did_key",
    "method_key",
    "private_key_from_jwk",
    "private_key_to_jwk",
    "public_key_from_jwk",
    "public_key_to_jwk",
    "thumbprint",
    "verification_method_key",
]
