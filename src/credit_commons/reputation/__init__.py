"""Reputation (issue 19): signed vouch and report events, the signed time-locked rule set,
the deterministic scorer and Aura tiers (docs/reputation.md)."""

from __future__ import annotations

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

__all__ = [
    "MICRO",
    "RULES_TYP",
    "RuleSet",
    "RuleSetInvalid",
    "RuleSetNotFound",
    "RuleSetSignatureInvalid",
    "RuleSetTimeLocked",
    "SignedRuleSet",
    "Tier",
    "check_time_lock",
    "domain_matches",
    "parse_rule_set",
    "rule_set_hash",
    "select_active",
    "sign_rule_set",
    "verify_rule_set",
]
