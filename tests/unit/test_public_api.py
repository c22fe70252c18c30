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
        "ACCEPTED_ALGS", "AlgorithmNotAllowed", "DidInvalid", "DidResolutionFailed", "DidResolver",
        "EmbeddedKeyStore", "KeyDecryptionFailed", "KeyExists", "KeyInvalid", "KeyNotFound",
        "KeyStore", "KeyType", "KeyTypeMismatch", "KeyVersion", "KmsConfigInvalid",
        "KmsUnavailable", "MasterKeyring", "Pkcs11Token", "PrivateKey", "PublicKey",
        "SignatureInvalid", "Signer", "StoredSigner", "check_alg", "check_did_web",
        "decode_did_key", "did_key_document", "did_web_of", "did_web_refusal",
        "did_web_unresolvable", "did_web_url", "encode_did_key", "method_key",
        "private_key_from_jwk", "private_key_to_jwk", "public_key_from_jwk", "public_key_to_jwk",
        "thumbprint", "verification_method_key",
        # Service-to-service tokens (issue 21 item 2).
        "MAX_TTL", "SERVICES", "SERVICE_SCOPES", "SERVICE_TYP", "ServiceCaller",
        "ServiceScopeMissing", "ServiceTokenInvalid", "ServiceTokenSource", "accepted_keys",
        "issue_service_token", "rotate_due_service_keys", "rotate_service_key",
        "service_key_name", "verify_service_token",
        # Services outside the platform: registered keys, rotated from the service's side.
        "KEY_PROOF_TYP", "ServiceIdentity", "ServiceKeyRefused", "ServiceKeyRegistered",
        "check_instance_name", "register_service_key", "registered_instances",
        "registered_keys", "rotate_registered_key",
        # Their versions and states, as the CLI and GET /v1/internal/service-keys list them.
        "ServiceKeyState", "service_key_states",
    },
    "credit_commons.gateway": set(),
    "credit_commons.lenders": {
        "CLIENT_ID_PATTERN", "CONSOLE_TOKEN_PREFIX", "ConsoleGrant", "ConsoleTokenView",
        "IssuedConsoleToken", "console_grant", "console_sign_in", "issue_console_token",
        "list_console_tokens", "revoke_console_token",
        "LenderClient", "LenderClientView", "LenderCreate",
        "LenderRegistered", "LenderUpdate", "LenderUpdated", "client_names", "client_status",
        "consume_assertion_id", "get_client", "read_client", "register_client", "update_client",
        "validate_jwks", "validate_purposes", "validate_webhook_url",
        "THUMBPRINT_PATTERN", "ClientStatus", "LenderCertificateChanged",
        "certificate_thumbprint", "validate_thumbprint",
    },
    "credit_commons.client": {
        "AccessToken", "ApiConflict", "ApiError", "ApiForbidden", "ApiInvalid", "ApiNotFound",
        "ApiRateLimited", "ApiUnavailable", "ArtefactInvalid", "BundleKeyInvalid",
        "BundleVersions", "Consent", "ConsentPending", "DiscoveryEntry", "KeyFileExists",
        "KeyFileInvalid", "KeyFileUnprotected", "Lender",
        "LenderKey", "LenderNotConfigured", "PlatformUrlInvalid", "ReceiptMismatch",
        "ReceiptPending", "Retrieval", "RetrievalInvalid", "VerifiedRetrieval", "WebhookInvalid",
        "WebhookNotice",
    },
    "credit_commons.vault": {
        "DecryptionFailed", "EnvelopeHeader", "KeyVersionRetired", "Kms", "KmsConfigInvalid",
        "KmsUnavailable", "LocalKms", "Pkcs11Kms", "SealContext", "SubjectKeyRef", "Vault",
        "WrappedKey", "note_destroyed_below", "note_kek_version", "open_envelope", "parse_header",
        "seal", "state_subquery"
    },
    "credit_commons.ledger": {
        "AuditFailed", "Checkpoint", "LogKey", "PendingReceipt", "Receipt", "ReceiptInvalid",
        "VerifiedReceipt", "audit_log", "pending_receipt", "verify_checkpoint", "verify_cosigned",
        "verify_receipt", "Ed25519Verifier", "pending_receipt_of",
        # The RFC 6962 tree and proofs, for the full node's mirror (issue 20 item 2).
        "EMPTY_ROOT", "Hash", "NodeId", "TreeRangeInvalid", "ConsistencyProof",
        "InclusionProof", "consistency_proof", "inclusion_proof", "leaf_hash", "node_hash",
        "root_from_source", "verify_consistency", "verify_inclusion",
        # The committee's cosignature, verified by a full node before it serves it.
        "CommitteeLines", "CommitteeVerifier", "sort_committee_lines",
    },
    "credit_commons.node": {
        "DROP_REASONS", "DropHook", "Dropped", "Follower", "Mirror",
        "PinMismatch", "Pins", "Platform", "Quotas", "TreeSource", "parse_bundle", "tile_path",
        "verify_message", "verify_presentation", "PlatformLag", "rotate_node_key", "service_token",
        # Scoring the mirrored reputation events (issue 20).
        "NodeScoreNotFound", "NodeScorer", "NodeScores", "ScoringRefused",
        # Missing scoring inputs: named, repaired from the platform, stream gaps skipped.
        "MissingInputs", "RepairIncomplete", "RepairReport", "repair_inputs", "StreamGap",
        "skip_lost_gaps",
    },
    "credit_commons.events": {
        "OBJECT_KEY_LABEL", "OBJECT_PATTERN", "Digest", "EventDetails", "EventRow", "EventSpec",
        "LogOutboxRow", "ObjectDigests", "PseudonymField", "RecordedEvent", "Token",
        "event_digest", "event_document", "event_types", "log_entry", "log_entry_reference",
        "record_event", "record_events", "recorded_with", "unkeyed_object_digest",
        # The rows of events, for a caller that writes them in its own statement, or made
        # ready before its write begins.
        "EventRows", "event_rows", "write_event_rows",
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
        # An X.509-certified issuer's status list, read by the membership status step
        # (issue 19): the chain's end-entity key, and the kinds of trust.
        "EntryKind", "certified_key",
        # Seed 004's threshold proof, the relying party's check (issue 19).
        "ANY_AUDIENCE", "THRESHOLD_STATEMENT", "threshold_request_hash", "verify_threshold_proof",
        # Issue 16, trust and policy.
        "AllOf", "AnyOf", "EvaluationContext", "MaxCredentialAge", "Policy", "PolicyDenied",
        "PolicyInvalid", "Predicate", "RequireClaims", "RequireHolderBinding",
        "RequireIssuerKind", "RequirePurpose", "RequireStatusCheck", "RequireTrustMarks",
        "RequireType", "Rule", "VerifiedCredential", "check_version_floor", "parse_policy",
        "policy_document", "PROFILES", "Profile", "ProfileUnknown", "apply_profile",
        "TRUST_BUNDLE_TYP", "IssuerNotTrusted", "TrustBundle", "TrustBundleExpired",
        "TrustBundleInvalid", "TrustBundleRollback", "TrustBundleSignatureInvalid", "TrustEntry",
        "sign_bundle", "verify_bundle",
        # Issue 16, the verifier service.
        "PRESENTER_DENIAL", "PresentationRequest",
        "PresentedCredential", "Reason", "RequestCreated", "AcceptedResponse", "SdJwtVerified",
        "TransactionStatus", "VerificationDenied", "VerifierDecision",
    },
    "credit_commons.identity": {
        "ATTESTATION_TYP", "Attestation", "ExportedDelegation", "ExportedIdentifier",
        "IdentityView", "Permission", "Principal", "acting_for", "actor_of", "authorise",
        "delegatees_of", "existing_identities", "has_delegation", "is_tombstoned",
        "prune_access_tokens", "prune_delegations", "replace_did", "rotation_message",
        "signed_in_still", "subject_of", "token_digest",
    },
    "credit_commons.issuer": {
        "CREDIT_READINESS", "ExportedCredential", "HeldCredential", "ISSUER_KEY", "StatusKind",
        "StatusRef", "disclosure_paths", "export_credentials", "forget_subject", "get_status",
        "is_own_issuer", "issuer_key_versions", "own_status_list_id", "present",
        "sd_jwt_credentials", "issuer_did", "issuer_signer", "subject_erased",
        "RenderedList", "render_status_list", "status_uri",
        # Issue 16, the verifier's hot path.
        "EntryState", "entry_state", "held", "HELD", "join_held_credentials", "issuer_public_key",
        # Issue 19, the capability credential.
        "COMMUNITY_TIER", "COMMUNITY_TIER_VCT", "subject_at_entry", "issued_text",
    },
    "credit_commons.consent": {
        "AccessRecord", "ExportedConsent", "TEMPLATES", "export_subject", "forget_codes",
        "prune_denial_counts"
    },
    "credit_commons.web": {
        "N_", "ROLES", "Area", "SignInMethod", "SignInRequired", "WebSession", "WrongRole",
        "add_flash", "end_all_sessions", "end_session", "language", "page_router",
        "prune_sessions", "render", "require", "requires", "safe_next", "start_session",
    },
    "credit_commons.reputation": {
        # The rule set (issue 19, R2).
        "MICRO", "RULES_TYP", "RuleSet", "RuleSetInvalid", "RuleSetNotFound",
        "RuleSetSignatureInvalid", "RuleSetTimeLocked", "SignedRuleSet", "Tier",
        "check_time_lock", "domain_matches", "parse_rule_set", "rule_set_hash", "select_active",
        "sign_rule_set", "verify_rule_set",
        # Events and members (issue 19, R1).
        "CTX_PATTERN", "MAX_EVENT_BYTES", "BudgetExhausted", "ContextNotAllowed", "EventAccepted",
        "EventInvalid", "EventOutsideWindow", "EventReplayed", "EventSignatureInvalid",
        "EventTooLarge", "EventType", "MemberCredentialRefused", "MemberRegistered",
        "ReputationError",
        "ReputationEvent", "RulesUnavailable", "SenderLocked", "UnknownBlob", "blob_cid",
        # Excluded DIDs (issue 19: tombstoned subjects skipped).
        "MemberExcluded", "RecipientExcluded",
        # Memberships as full nodes score them (issue 20).
        "HIDDEN", "Membership", "UnknownMember", "did_sha256", "members_of_memberships",
        "score_contexts",
        "check_window", "ed25519_did", "new_nonce", "parse_cid", "parse_event", "sign_event",
        # The scorer (issue 19, R3); the sparse recompute is imported by module (numpy/scipy
        # stay out of every import of the package).
        "RuleSetRef", "ScoreRecord", "ScoringError", "ScoringEvent", "ScoringMember",
        "score_reference",
        # The rule-set registry (issue 19, R2).
        "DEFAULT_RULE_SET_ID", "DevRuleSetNotAllowed", "RuleSetVersionConflict", "RuleSetView",
        "RulesChanged", "StoredRuleSet", "active_rule_set", "get_rule_set", "list_rule_sets",
        "register_dev_rule_set", "register_rule_set",
        # The full node verifies a mirrored rule set's token (issue 20 item 2).
        "rule_set_kid",
        # What the holder's wallet signs and compares (issue 19, threshold proof).
        "micro_string", "sign_subject_proof",
    },
    "credit_commons.zk": {
        "FIELD_MODULUS", "NODE_DIR", "POSEIDON", "SALT_BITS", "VALUE_BITS", "FieldElementInvalid",
        "NodeUnavailable", "NodeWorker", "PoseidonInstance", "ProofInvalid", "ProofMalformed",
        "ProvingFailed", "ZkError", "commit", "decode_element", "default_worker",
        "encode_element", "hash2", "new_salt", "permute", "require_element", "require_salt",
        "require_value",
        # The statement registry (zk2).
        "ArtefactMismatch", "LoadedStatement", "SetupNotAllowed", "Statement", "StatementInvalid",
        "StatementNotFound", "StatementSignatureInvalid", "get_statement", "list_statements",
        "load_statement", "parse_statement", "register_statement", "statements_for_vct",
        "ClaimNotProvable", "claim_value", "commit_claims", "day_number", "opening",
        "opening_paths", "proof_used", "record_proof_uses", "register_dev_statements",
        "prove_statement", "set_root", "string_id",
        "ARTEFACTS_DIR", "COMMITMENTS_CLAIM", "OPENINGS_CLAIM",
        "GROUP_TREE_DEPTH", "STATEMENTS", "GeneratedProof",
        "Groth16Proof", "MerklePath", "VerificationKey", "merkle_path", "merkle_root", "prove",
        "request_binding", "verify_groth16",
        "CREDIT_READINESS_VCT", "KYC_VCT", "SHG_VCT", "COMMUNITY_TIER_VCT",
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
