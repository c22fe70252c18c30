"""The rule set's errors (``reputation/rules.py``): one class per refused guard, each with
its stable code, so a client (and a test) can tell which guard a rule set broke."""

from __future__ import annotations

from credit_commons.core.errors import ConflictError, IntegrityError, NotFoundError, ValidationError

__all__ = [
    "DevRuleSetNotAllowed",
    "RuleSetDiversityUnknownTier",
    "RuleSetDomainTooBroad",
    "RuleSetInvalid",
    "RuleSetIterationsOutOfRange",
    "RuleSetNotFound",
    "RuleSetOutputTypeInvalid",
    "RuleSetPurposeMissing",
    "RuleSetSignatureInvalid",
    "RuleSetTiersNotIncreasing",
    "RuleSetTimeLockInvalid",
    "RuleSetTimeLocked",
    "RuleSetVersionConflict",
]


class RuleSetInvalid(ValidationError):
    """A rule-set document that is not acceptable: a missing or unknown key, a value of the
    wrong type or out of range.  ``extra["field"]`` names the field (a JSON pointer)."""

    code = "reputation.rules_invalid"
    title = "Rule set not acceptable"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}", extra={"field": field})
        self.field = field


class RuleSetDomainTooBroad(RuleSetInvalid):
    """``aura.domain`` is a bare ``*``, a ``*`` pattern not of the form ``prefix:*``, or a
    prefix shorter than three characters (seed 002 §7 guards)."""

    code = "reputation.rules_domain_too_broad"
    title = "Rule set domain pattern too broad"


class RuleSetPurposeMissing(RuleSetInvalid):
    """``aura.purpose`` is empty (seed 002 §7: every rule states its purpose)."""

    code = "reputation.rules_purpose_missing"
    title = "Rule set states no purpose"


class RuleSetOutputTypeInvalid(RuleSetInvalid):
    """``aura.outputCredentialType`` is empty or not an ``https:``/``urn:`` identifier."""

    code = "reputation.rules_output_type_invalid"
    title = "Rule set output credential type not acceptable"


class RuleSetTiersNotIncreasing(RuleSetInvalid):
    """``aura.tiers`` minimum scores do not strictly increase (or a tier name repeats)."""

    code = "reputation.rules_tiers_not_increasing"
    title = "Rule set tiers not strictly increasing"


class RuleSetDiversityUnknownTier(RuleSetInvalid):
    """A key of ``aura.diversity`` (or ``aura.minTierForCredential``) names no tier."""

    code = "reputation.rules_diversity_unknown_tier"
    title = "Rule set names an unknown tier"


class RuleSetTimeLockInvalid(RuleSetInvalid):
    """``timeLockDays`` is below 1: a rule set must not take effect as it is published."""

    code = "reputation.rules_time_lock_invalid"
    title = "Rule set time lock too short"


class RuleSetIterationsOutOfRange(RuleSetInvalid):
    """``iterations`` lies outside 1..5."""

    code = "reputation.rules_iterations_out_of_range"
    title = "Rule set iterations out of range"


class RuleSetTimeLocked(ValidationError):
    """``validFrom`` is earlier than publication plus ``timeLockDays`` (the time lock)."""

    code = "reputation.rules_time_locked"
    title = "Rule set would take effect before its time lock"


class RuleSetSignatureInvalid(IntegrityError):
    """A rule-set token that is not a JWS of the registry key, or whose signature fails."""

    code = "reputation.rules_signature_invalid"
    title = "Rule set signature invalid"


class RuleSetNotFound(NotFoundError):
    """No rule set of that id (and version), or none active at the time asked."""

    code = "reputation.rules_unknown"
    title = "No such rule set"


class RuleSetVersionConflict(ConflictError):
    """A rule set whose version is not above every version registered under its id."""

    code = "reputation.rules_version_conflict"
    title = "Rule set version not above the registered one"


class DevRuleSetNotAllowed(IntegrityError):
    """A development registration (time lock not enforced) in production, or a rule set
    registered that way read in production."""

    code = "reputation.rules_dev_not_allowed"
    title = "Development rule set not allowed here"
