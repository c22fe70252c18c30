"""Guards the public namespaces: every name in ``__all__`` exists, has a docstring, and the
list changes only on purpose (update the expected set together with the docs)."""

from __future__ import annotations

import importlib
import inspect

import pytest

EXPECTED = {
    "credit_commons": {"__version__"},
    "credit_commons.core": {
        "Clock", "CommonsError", "ConfigurationError", "ConflictError", "Environment",
        "FixedClock", "ForbiddenError", "IdGenerator", "IntegrityError", "NotFoundError",
        "Pseudonymizer", "Settings", "SystemClock", "UnauthorizedError", "UnavailableError",
        "ValidationError", "b64_decode", "b64_encode", "b64url_decode", "b64url_encode",
        "canonical_json", "new_id", "sha256", "sha256_hex",
    },
    "credit_commons.keys": {
        "ACCEPTED_ALGS", "AlgorithmNotAllowed", "DidInvalid", "DidResolutionFailed",
        "DidResolver", "EmbeddedKeyStore", "KeyDecryptionFailed", "KeyExists", "KeyInvalid",
        "KeyNotFound", "KeyStore", "KeyType", "KeyTypeMismatch", "KeyVersion", "MasterKeyring",
        "PrivateKey", "PublicKey", "SignatureInvalid", "Signer", "StoredSigner", "check_alg",
        "decode_did_key", "did_key_document", "did_web_url", "encode_did_key",
        "private_key_from_jwk", "private_key_to_jwk", "public_key_from_jwk",
        "public_key_to_jwk", "thumbprint",
    },
    "credit_commons.gateway": set(),
    "credit_commons.lenders": {
        "CLIENT_ID_PATTERN", "LenderClient", "LenderClientView", "LenderCreate",
        "LenderRegistered", "LenderUpdate", "LenderUpdated", "client_status",
        "consume_assertion_id", "get_client", "read_client", "register_client", "update_client",
        "validate_jwks", "validate_purposes", "validate_webhook_url",
    },
    "credit_commons.client": {
        "AccessToken", "ApiConflict", "ApiError", "ApiForbidden", "ApiInvalid", "ApiNotFound",
        "ApiRateLimited", "ApiUnavailable", "ArtefactInvalid", "Consent", "ConsentPending",
        "DiscoveryEntry", "KeyFileExists", "KeyFileInvalid", "KeyFileUnprotected", "Lender",
        "LenderKey", "LenderNotConfigured", "PlatformUrlInvalid", "ReceiptMismatch",
        "ReceiptPending", "Retrieval", "RetrievalInvalid", "VerifiedRetrieval", "WebhookInvalid",
        "WebhookNotice",
    },
    "credit_commons.vault": {
        "DecryptionFailed", "EnvelopeHeader", "KeyVersionRetired", "Kms", "KmsConfigInvalid",
        "KmsUnavailable", "LocalKms", "Pkcs11Kms", "SealContext", "SubjectKeyRef", "WrappedKey",
        "open_envelope", "parse_header", "seal",
    },
    "credit_commons.ledger": {
        "AuditFailed", "Checkpoint", "ReceiptInvalid", "VerifiedReceipt", "audit_log",
        "verify_checkpoint", "verify_cosigned", "verify_receipt",
    },
    "credit_commons.events": {
        "OBJECT_KEY_LABEL", "OBJECT_PATTERN", "Digest", "EventDetails", "EventRow", "EventSpec",
        "LogOutboxRow", "ObjectDigests", "PseudonymField", "RecordedEvent", "Token",
        "event_digest", "event_document", "event_types", "log_entry", "log_entry_reference",
        "record_event", "record_events", "unkeyed_object_digest",
    },
    "credit_commons.verifier": {
        "SD_JWT_VC_TYP", "AttestationAudienceMismatch", "AttestationExpired",
        "AttestationInvalid", "AttestationMalformed", "AttestationNonceMismatch",
        "AttestationNotYetValid", "AttestationSignatureInvalid", "CredentialRevoked",
        "CredentialSuspended", "ForeignIssuers", "IssuerKeyResolver", "IssuerKind",
        "IssuerMetadataInvalid", "IssuerTrusted", "IssuerUntrusted", "KeyBinding",
        "StatusListCache", "StatusListFetcher", "StatusListRejected", "StatusReference",
        "UnknownForeignKey", "UnknownIssuerKey", "UntrustedIssuer", "VcFacts", "Verified",
        "add_trusted_issuer", "disclosed_claims", "foreign_issuers", "issuer_kind",
        "list_trusted_issuers", "metadata_url", "raise_for_status", "remove_trusted_issuer",
        "sd_jwt_vc_facts", "status_list_cache", "trusted_kind", "verify_attestation",
        "verify_presentation", "verify_sd_jwt", "verify_sd_jwt_credential",
        "verify_vc_jwt_credential",
    },
}  # fmt: skip


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_public_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert set(module.__all__) == EXPECTED[module_name]
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{module_name}.{name} has no docstring"
