"""Errors of the keys domain."""

from __future__ import annotations

from credit_commons.core.errors import (
    ConfigurationError,
    ConflictError,
    IntegrityError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)

__all__ = [
    "AlgorithmNotAllowed",
    "DidInvalid",
    "DidResolutionFailed",
    "KeyDecryptionFailed",
    "KeyExists",
    "KeyInvalid",
    "KeyNotFound",
    "KeyTypeMismatch",
    "KmsConfigInvalid",
    "KmsUnavailable",
    "SignatureInvalid",
]


class SignatureInvalid(IntegrityError):
    """A signature does not verify under the given key."""

    code = "key.signature_invalid"
    title = "Signature invalid"


class AlgorithmNotAllowed(IntegrityError):
    """A JOSE ``alg`` outside the allow-list (``EdDSA``, ``Ed25519``, ``ES256``)."""

    code = "key.algorithm_not_allowed"
    title = "Algorithm not allowed"


class KeyTypeMismatch(IntegrityError):
    """The ``alg`` does not belong to the key's type (key-type confusion)."""

    code = "key.type_mismatch"
    title = "Algorithm does not match the key"


class KeyInvalid(ValidationError):
    """Key material that cannot be parsed or is not an allowed key type."""

    code = "key.invalid"
    title = "Invalid key"


class KeyNotFound(NotFoundError):
    """No key of that name (or version) in the key store."""

    code = "key.not_found"
    title = "Key not found"


class KeyExists(ConflictError):
    """A key of that name already exists."""

    code = "key.exists"
    title = "Key already exists"


class KeyDecryptionFailed(IntegrityError):
    """A stored private key does not open under the master key (one opaque error)."""

    code = "key.decryption_failed"
    title = "Stored key cannot be opened"


class DidInvalid(ValidationError):
    """A DID that is malformed or of an unsupported method or key type."""

    code = "did.invalid"
    title = "Invalid DID"


class DidResolutionFailed(UnavailableError):
    """A DID document could not be fetched or is not acceptable."""

    code = "did.resolution_failed"
    title = "DID resolution failed"
    status = 502


# The token's errors, shared by the key store on an HSM and the vault's KMS (which names
# them among its public errors); their codes keep the ``vault.`` prefix they were born with.


class KmsUnavailable(UnavailableError):
    """The KMS (an HSM token, its library or a session on it) cannot be used right now."""

    code = "vault.kms_unavailable"
    title = "Key management service unavailable"


class KmsConfigInvalid(ConfigurationError):
    """The KMS configuration is unusable: missing keys, a bad library path, a bad version."""

    code = "vault.kms_config_invalid"
    title = "Invalid KMS configuration"
