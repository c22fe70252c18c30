"""The verifier's policy engine (seed 002 §8): small rules composed with ``AllOf``/``AnyOf``.

A policy is a JSON document ``{"id", "version", "rule"}`` parsed at the boundary
(:func:`parse_policy`, bounded in size and depth) into frozen rule objects.  Each rule
evaluates one :class:`VerifiedCredential` — the facts the pipeline established about a
credential that passed its cryptographic steps (types, issuer, ``iat``, disclosed claims,
whether its status was checked and its holder bound, the issuer's trust marks) — in an
:class:`EvaluationContext` (the time and the request's declared purpose).

Verification raises, it never returns ``False`` (STYLE habit 4): :meth:`Rule.check` returns
only when the rule holds and raises :class:`PolicyDenied` carrying a stable ``reason``
otherwise.  The reasons are for the verifier's own record and the log; toward the presenter
every denial is the pipeline's one uniform answer.

Rules (their JSON ``rule`` names in brackets):

* :class:`AllOf` (``all_of``) and :class:`AnyOf` (``any_of``) — neither may be empty;
* :class:`RequireType` (``require_type``) — the credential has one of the types
  (an SD-JWT VC's ``vct`` or a W3C VC's ``type`` members);
* :class:`RequireClaims` (``require_claims``) — every claim path is disclosed (not null);
* :class:`Predicate` (``predicate``) — ``path op value`` with ``eq neq gte lte in exists``
  over numbers, strings and ISO 8601 dates/timestamps (compared as instants);
* :class:`RequireTrustMarks` (``require_trust_marks``) — the issuer's trust entry carries
  every mark;
* :class:`RequireStatusCheck` (``require_status_check``), :class:`RequireHolderBinding`
  (``require_holder_binding``), :class:`MaxCredentialAge` (``max_credential_age``),
  :class:`RequirePurpose` (``require_purpose``), :class:`RequireIssuerKind`
  (``require_issuer_kind``).

Their JSON form is :mod:`~credit_commons.verifier.policy_json`.  The policy version floor
(:func:`check_version_floor`) refuses a request made under a version older than the floor
with ``policy_version_downgrade`` (seed 002 §5 step 10).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal, Protocol, TypeAlias

from credit_commons.core.errors import ForbiddenError, ValidationError

__all__ = [
    "AllOf",
    "AnyOf",
    "EvaluationContext",
    "MaxCredentialAge",
    "Policy",
    "PolicyDenied",
    "PolicyInvalid",
    "Predicate",
    "PredicateOp",
    "RequireClaims",
    "RequireHolderBinding",
    "RequireIssuerKind",
    "RequirePurpose",
    "RequireStatusCheck",
    "RequireTrustMarks",
    "RequireType",
    "Rule",
    "VerifiedCredential",
    "check_version_floor",
    "claim_at",
    "instant",
]


#: A claim path (as DCQL's, OpenID4VP 1.0 §7): object member names and array indexes.
ClaimPath: TypeAlias = tuple[str | int, ...]
#: What a predicate compares against: a number, a string (an ISO 8601 date or timestamp is
#: compared as an instant), a boolean, or (for ``in``) a list of those.
Scalar: TypeAlias = int | float | str | bool
PredicateOp = Literal["eq", "neq", "gte", "lte", "in", "exists"]


class PolicyInvalid(ValidationError):
    """A policy document or rule that cannot be built (empty ``AllOf``, unknown rule, too
    large, a predicate whose value does not fit its operator)."""

    code = "verifier.policy_invalid"
    title = "Invalid policy"


class PolicyDenied(ForbiddenError):
    """A credential (or request) the policy does not accept; ``reason`` is the stable name of
    the rule that failed (``type_not_accepted``, ``claim_missing``, ``predicate_failed``,
    ``policy_version_downgrade`` …).  For the verifier's record, never for the presenter."""

    code = "verifier.policy_denied"
    title = "Denied by policy"

    def __init__(self, reason: str, detail: str | None = None) -> None:
        self.reason = reason
        super().__init__(detail or reason, extra={"reason": reason})


@dataclass(frozen=True, slots=True)
class VerifiedCredential:
    """What the pipeline established about one credential whose signature, binding and
    validity passed: the value every rule evaluates.

    ``types`` are its ``vct`` or W3C ``type`` members; ``issuer_kind`` how its issuer is
    trusted (``platform``, ``https``, ``did:web``, ``did:key``, ``x509``); ``marks`` the
    issuer's trust marks; ``claims`` the disclosed claims.
    """

    types: frozenset[str]
    issuer: str
    issuer_kind: str
    issued_at: datetime | None
    claims: Mapping[str, Any]
    status_checked: bool
    holder_bound: bool
    marks: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.issued_at is not None and self.issued_at.tzinfo is None:
            raise ValueError("issued_at must be an aware datetime")


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    """Where a credential is evaluated: ``now`` (aware) and the request's declared purpose."""

    now: datetime
    purpose: str | None = None


class Rule(Protocol):
    """One check of a policy: :meth:`check` returns only when it holds."""

    def check(self, credential: VerifiedCredential, context: EvaluationContext) -> None:
        """Raise :class:`PolicyDenied` unless ``credential`` satisfies the rule."""


# -- composition ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every rule holds.  An empty ``AllOf`` is refused when built (it would accept all)."""

    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        if not self.rules:
            raise PolicyInvalid("an AllOf needs at least one rule")

    def check(self, credential: VerifiedCredential, context: EvaluationContext) -> None:
        """Raises the first failing rule's :class:`PolicyDenied`."""
        for rule in self.rules:
            rule.check(credential, context)


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one rule holds.  An empty ``AnyOf`` is refused when built (it would deny all,
    which is a mistake rather than a policy)."""

    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        if not self.rules:
            raise PolicyInvalid("an AnyOf needs at least one rule")

    def check(self, credential: VerifiedCredential, context: EvaluationContext) -> None:
        """Raises :class:`PolicyDenied` (``no_alternative``, naming each alternative's reason)
        when none holds."""
        reasons: list[str] = []
        for rule in self.rules:
            try:
                rule.check(credential, context)
            except PolicyDenied as e:
                reasons.append(e.reason)
            else:
                return
        raise PolicyDenied("no_alternative", f"no alternative holds: {', '.join(reasons)}")


# -- rules ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequireType:
    """The credential has at least one of ``types``."""

    types: frozenset[str]

    def __post_init__(self) -> None:
        if not self.types:
            raise PolicyInvalid("require_type needs at least one type")

    def check(self, credential: VerifiedCredential, context: EvaluationContext) -> None:
        """Raises :class:`PolicyDenied` (``type_not_accepted``)."""
        if not credential.types & self.types:
            raise PolicyDenied("type_not_accepted", "the credential is not of a required type")


_MISSING: Final = object()


def claim_at(claims: Mapping[str, Any], path: ClaimPath) -> Any:
    """The value at ``path`` in ``claims``, or a sentinel when absent (a ``null`` counts as
    absent, as DCQL's claim matching has it)."""
    value: Any = claims
    for segment in path:
        if isinstance(segment, str):
            if not isinstance(value, Mapping) or segment not in value:
                return _MISSING
        elif not isinstance(value, list) or not 0 <= segment < len(value):
            return _MISSING
        value = value[segment]
    return _MISSING if value is None else value


def _path_text(path: ClaimPath) -> str:
    return "/".join(str(s) for s in path)


@dataclass(frozen=True, slots=True)
class RequireClaims:
    """Every claim path is disclosed (present and not ``null``)."""

    paths: tuple[ClaimPath, ...]

    def __post_init__(self) -> None:
        if not self.paths or not all(self.paths):
            raise PolicyInvalid("require_claims needs non-empty claim paths")

    def check(self, credential: VerifiedCredential, context: EvaluationContext) -> None:
        """Raises :class:`PolicyDenied` (``claim_missing``)."""
        for path in self.paths:
            if claim_at(credential.claims, path) is _MISSING:
                raise PolicyDenied("claim_missing", f"claim {_path_text(path)} is not disclosed")


# ISO 8601 / RFC 3339: a calendar date, or a date and time with seconds optional and an
# offset required (a time without an offset names no instant).
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:\d{2})"
)


def instant(text: str) -> datetime | None:
    """``text`` as an instant when it is an ISO 8601 date (midnight UTC) or a timestamp with
    an offset; ``None`` when it is neither (an ordinary string)."""
    try:
        if _DATE.fullmatch(text):
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        if _TIMESTAMP.fullmatch(text):
            normalised = text.upper().replace("Z", "+00:00")
            if "." in normalised:  # Python reads at most six fractional digits.
                head, rest = normalised.split(".", 1)
                digits = rest[: len(rest) - 6]
                normalised = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
            return datetime.fromisoformat(normalised).astimezone(UTC)
    except ValueError:
        return None
    return None


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _comparable(claim: object, wanted: Scalar) -> tuple[Any, Any] | None:
    """The two sides in one comparable domain, or ``None`` when they have none: numbers
    with numbers, instants with instants (when ``wanted`` is a date or timestamp), strings
    with strings, booleans with booleans."""
    if _number(wanted):
        # An int of any size compares exactly with an int or a float; only a float can be
        # non-finite (float() of a huge int would raise OverflowError instead).
        if _number(claim) and not (isinstance(claim, float) and not math.isfinite(claim)):
            return claim, wanted
        return None
    if isinstance(wanted, bool):
        return (claim, wanted) if isinstance(claim, bool) else None
    if isinstance(wanted, str):
        if not isinstance(claim, str):
            return None
        wanted_at = instant(wanted)
        if wanted_at is None:
            return claim, wanted
        claim_at_ = instant(claim)
        return (claim_at_, wanted_at) if claim_at_ is not None else None
    return None


@dataclass(frozen=True, slots=True)
class Predicate:
    """``claim(path) op value`` (seed 002 §5 step 7).

    ``exists`` takes no value; ``in`` a non-empty list; ``gte``/``lte`` a number or a string
    (ISO 8601 dates and timestamps compare as instants, other strings by code point);
    ``eq``/``neq`` any scalar.  A claim of another type than the value fails the predicate.
    """

    path: ClaimPath
    op: PredicateOp
    value: Scalar | tuple[Scalar, ...] | None = None

    def __post_init__(self) -> None:
        if not self.path:
            raise PolicyInvalid("a predicate needs a claim path")
        if self.op == "exists":
            if self.value is not None:
                raise PolicyInvalid("exists takes no value")
        elif self.op == "in":
            if not isinstance(self.value, tuple) or not self.value:
                raise PolicyInvalid("in takes a non-empty list")
        elif self.value is None or isinstance(self.value, tuple):
            raise PolicyInvalid(f"{self.op} takes one scalar value")
        elif self.op in ("gte", "lte") and isinstance(self.value, bool):
            raise PolicyInvalid(f"{self.op} compares numbers, strings, dates or timestamps")
        if isinstance(self.value, float) and not math.isfinite(self.value):
            raise PolicyInvalid("a predicate value is a finite number")

    def check(self, credential: VerifiedCredential, context: EvaluationContext) -> None:
        """Raises :class:`PolicyDenied` (``claim_missing`` or ``predicate_failed``)."""
        claim = claim_at(credential.claims, self.path)
        where = _path_text(self.path)
        if claim is _MISSING:
            raise PolicyDenied("claim_missing", f"claim {where} is not disclosed")
        if self.op == "exists" or self._holds(claim):
            return
        raise PolicyDenied("predicate_failed", f"claim {where} does not satisfy {self.op}")

    def _holds(self, claim: object) -> bool:
        if isinstance(self.value, tuple):  # "in"
            return any(_equal(claim, v) for v in self.value)
        if self.value is None:  # "exists", decided by the caller
            return True
        if self.op == "eq":
            return _equal(claim, self.value)
        if self.op == "neq":
            # A claim of another type is not "not equal": it is not comparable at all.
            pair = _comparable(claim, self.value)
            return pair is not None and pair[0] != pair[1]
        pair = _comparable(claim, self.value)
        if pair is None:
            return False
        return bool(pair[0] >= pair[1]) if self.op == "gte" else bool(pair[0] <= pair[1])


def _equal(claim: object, wanted: Scalar) -> bool:
    pair = _comparable(claim, wanted)
    return pair is not None and pair[0] == pair[1]


@dataclass(frozen=True, slots=True)
class RequireTrustMarks:
    """The issuer's trust entry carries every one of ``marks``."""

    marks: frozenset[str]

    def __post_init__(self) -> None:
        if not self.marks:
            raise PolicyInvalid("require_trust_marks needs at least one mark")

    def check(self, credential: VerifiedCredential, context: EvaluationContext) -> None:
        """Raises :class:`PolicyDenied` (``trust_mark_missing``)."""
        missing = sorted(self.marks - credential.marks)
        if missing:
            raise PolicyDenied("trust_mark_missing", f"the issuer lacks trust marks {missing}")


@dataclass(frozen=True, slots=True)
class RequireStatusCheck:
    """The credential's status was checked (it has a status reference that was read)."""

    def check(self, credential: VerifiedCredential, context: EvaluationContext) -> None:
        """Raises :class:`PolicyDenied` (``status_unchecked``)."""
        if not credential.status_checked:
            raise PolicyDenied("status_unchecked", "the credential's status was not checked")


@dataclass(frozen=True, slots=True)
class RequireHolderBinding:
    """The presentation proved possession of the credential's holder key (a KB-JWT)."""

    def check(self, credential: VerifiedCredential, context: EvaluationContext) -> None:
        """Raises :class:`PolicyDenied` (``holder_unbound``)."""
        if not credential.holder_bound:
            raise PolicyDenied("holder_unbound", "the presentation is not holder-bound")


@dataclass(frozen=True, slots=True)
class MaxCredentialAge:
    """The credential was issued at most ``seconds`` before now (and says when: ``iat``)."""

    seconds: int

    def __post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not 1 <= self.seconds <= 100 * 365 * 86400:
            raise PolicyInvalid("max_credential_age is 1 second to 100 years")

    def check(self, credential: VerifiedCredential, context: EvaluationContext) -> None:
        """Raises :class:`PolicyDenied` (``credential_age_unknown`` or ``credential_too_old``)."""
        if credential.issued_at is None:
            raise PolicyDenied("credential_age_unknown", "the credential has no issuance time")
        if context.now - credential.issued_at > timedelta(seconds=self.seconds):
            raise PolicyDenied("credential_too_old", "the credential is older than allowed")


@dataclass(frozen=True, slots=True)
class RequirePurpose:
    """The request declares a purpose — one of ``purposes`` when that is not empty."""

    purposes: frozenset[str] = frozenset()

    def check(self, credential: VerifiedCredential, context: EvaluationContext) -> None:
        """Raises :class:`PolicyDenied` (``purpose_missing`` or ``purpose_not_allowed``)."""
        if not context.purpose:
            raise PolicyDenied("purpose_missing", "the request declares no purpose")
        if self.purposes and context.purpose not in self.purposes:
            raise PolicyDenied("purpose_not_allowed", "the request's purpose is not allowed")


@dataclass(frozen=True, slots=True)
class RequireIssuerKind:
    """The issuer is trusted through one of ``kinds`` (``x509``, ``did:web``, ``did:key``,
    ``https``, ``platform``)."""

    kinds: frozenset[str]

    def __post_init__(self) -> None:
        if not self.kinds:
            raise PolicyInvalid("require_issuer_kind needs at least one kind")

    def check(self, credential: VerifiedCredential, context: EvaluationContext) -> None:
        """Raises :class:`PolicyDenied` (``issuer_kind_not_accepted``)."""
        if credential.issuer_kind not in self.kinds:
            raise PolicyDenied("issuer_kind_not_accepted", "the issuer's kind is not accepted")


# -- the policy ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """A verifier's policy: its ``id``, ``version`` (from 1) and root ``rule``."""

    id: str
    version: int
    rule: Rule

    def __post_init__(self) -> None:
        if not _POLICY_ID.fullmatch(self.id):
            raise PolicyInvalid("a policy id is 1 to 64 of [A-Za-z0-9._-]")
        if isinstance(self.version, bool) or not 1 <= self.version <= 2**31 - 1:
            raise PolicyInvalid("a policy version is a positive integer")

    def check(self, credential: VerifiedCredential, context: EvaluationContext) -> None:
        """Return only when ``credential`` satisfies the policy; raises :class:`PolicyDenied`."""
        self.rule.check(credential, context)


_POLICY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def check_version_floor(version: int, floor: int) -> None:
    """Refuse a request made under policy ``version`` older than ``floor`` (seed 002 §5 step
    10); raises :class:`PolicyDenied` (``policy_version_downgrade``)."""
    if version < floor:
        raise PolicyDenied(
            "policy_version_downgrade", f"policy version {version} is below the floor {floor}"
        )
