"""Reputation (issue 19): signed vouch and report events, members (the credentials DIDs
registered with), the signed time-locked rule set, the deterministic scorer and Aura tiers
(docs/reputation.md).

Beside the issuer in the layers, and below the verifier: work that needs both (checking a
membership credential) is composed in the gateway, the CLI or jobs.
"""

from __future__ import annotations

from credit_commons.reputation.errors import (
    BudgetExhausted,
    ContextNotAllowed,
    EventInvalid,
    EventOutsideWindow,
    EventReplayed,
    EventSignatureInvalid,
    EventTooLarge,
    MemberCredentialRefused,
    ReputationError,
    RulesUnavailable,
    SenderLocked,
    UnknownBlob,
)
from credit_commons.reputation.events import (
    CTX_PATTERN,
    MAX_EVENT_BYTES,
    ReputationEvent,
    blob_cid,
    check_window,
    ed25519_did,
    new_nonce,
    parse_cid,
    parse_event,
    sign_event,
)
from credit_commons.reputation.rules import (
    MICRO,
    RULES_TYP,
    RuleSet,
    RuleSetInvalid,
    RuleSetNotFound,
    RuleSetSignatureInvalid,
    RuleSetTimeLocked,
    SignedRuleSet,
    Tier,
    check_time_lock,
    domain_matches,
    parse_rule_set,
    rule_set_hash,
    select_active,
    sign_rule_set,
    verify_rule_set,
)
from credit_commons.reputation.schemas import EventAccepted, MemberRegistered
from credit_commons.reputation.scorer import (
    RuleSetRef,
    ScoreRecord,
    ScoringError,
    ScoringEvent,
    ScoringMember,
    score_reference,
)

__all__ = [
    "CTX_PATTERN",
    "MAX_EVENT_BYTES",
    "MICRO",
    "RULES_TYP",
    "BudgetExhausted",
    "ContextNotAllowed",
    "EventAccepted",
    "EventInvalid",
    "EventOutsideWindow",
    "EventReplayed",
    "EventSignatureInvalid",
    "EventTooLarge",
    "MemberCredentialRefused",
    "MemberRegistered",
    "ReputationError",
    "ReputationEvent",
    "RuleSet",
    "RuleSetInvalid",
    "RuleSetNotFound",
    "RuleSetRef",
    "RuleSetSignatureInvalid",
    "RuleSetTimeLocked",
    "RulesUnavailable",
    "ScoreRecord",
    "ScoringError",
    "ScoringEvent",
    "ScoringMember",
    "SenderLocked",
    "SignedRuleSet",
    "Tier",
    "UnknownBlob",
    "blob_cid",
    "check_time_lock",
    "check_window",
    "domain_matches",
    "ed25519_did",
    "new_nonce",
    "parse_cid",
    "parse_event",
    "parse_rule_set",
    "rule_set_hash",
    "score_reference",
    "select_active",
    "sign_event",
    "sign_rule_set",
    "verify_rule_set",
]
