"""The credential catalogue: credential types, their schemas and what is disclosable.

A credential type has a name, a ``vct`` URI (the SD-JWT VC type), a JSON Schema (draft
2020-12: claims are checked with ``jsonschema-rs``, failures described with ``jsonschema``),
the claim paths a holder may disclose selectively (JSON-pointer style,
``/income_bracket``), and a default validity.  ``CreditReadiness``
(seed 000) ships built in: the enterprise, a credit tier, income and debt-ratio brackets,
the verification sources, and a salted hash *commitment* to the exact score (seed 001) —
the score and its salt are a selectively disclosable claim that opens the commitment.
``KycCredential`` (the person's verification level and birth date: the claim ``age_at_least``
proves about; issue 19's proof of personhood) and ``ShgMembershipCredential`` (a self-help
group id, the member's role and since when: the claim ``member_of_group`` proves about) ship
built in too; their ``vct`` are the registry's statements' (``zk/registry_dev.py``).  Their
personal identifiers are pseudonyms only, and the proved claims are selectively disclosable,
so that a presentation carrying a proof shows the issuer's commitment, not the value.
``CommunityTierCredential`` (issue 19's capability credential: the Aura tier a member reached
in a reputation context under a named rule set, and a commitment to the exact community score
whose opening is selectively disclosable, as the Credit Readiness Credential's score) ships
built in; the Credit Readiness Credential may carry that tier as a disclosable claim.

Claim validation reports every failing field by path and by the schema rule it broke,
never by the submitted value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from credit_commons import zk
from credit_commons.core.encoding import b64url_encode, canonical_json, sha256
from credit_commons.core.errors import IntegrityError, ValidationError
from credit_commons.issuer.schemas import CredentialTypeView

__all__ = [
    "COMMUNITY_TIER",
    "COMMUNITY_TIER_VCT",
    "CREDIT_READINESS",
    "KYC",
    "SHG_MEMBERSHIP",
    "ClaimsInvalid",
    "CredentialType",
    "TypeInvalid",
    "commit_score",
    "complete_score_commitment",
    "verify_score_opening",
]

_NAME = re.compile(r"[A-Z][A-Za-z0-9]{2,63}")
_PATH = re.compile(r"(/[A-Za-z0-9_]{1,64}){1,4}")
_RESERVED = frozenset({zk.COMMITMENTS_CLAIM, zk.OPENINGS_CLAIM})


class ClaimsInvalid(ValidationError):
    """Claims that do not satisfy the credential type's schema (field-level ``errors``)."""

    code = "credential.claims_invalid"
    title = "Claims do not match the credential type"


class TypeInvalid(ValidationError):
    """A credential type definition that is not acceptable."""

    code = "credential.type_invalid"
    title = "Invalid credential type"


def _describe(error: Any) -> dict[str, str]:
    # The path of the instance and the schema rule, never the instance value itself.
    path = "/" + "/".join(str(p) for p in error.absolute_path)
    rule = str(error.validator)
    expected = error.validator_value
    if rule == "enum":
        message = "must be one of " + ", ".join(map(str, expected))
    elif rule == "required":
        missing = [
            name
            for name in expected
            if isinstance(error.instance, dict) and name not in error.instance
        ]
        message = "missing " + ", ".join(missing)
    elif rule == "additionalProperties":
        message = "has properties the type does not define"
    elif rule in {
        "type",
        "pattern",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
    }:
        message = f"breaks the {rule} rule ({expected})"
    else:
        message = f"breaks the {rule} rule"
    return {"field": path, "message": message}


@dataclass(frozen=True)
class CredentialType:
    """A credential type; it exists only if its schema and paths are valid."""

    name: str
    vct: str
    schema: Mapping[str, Any]
    disclosable: tuple[str, ...]
    default_validity_days: int = 365
    _validator: Draft202012Validator = field(init=False, repr=False, compare=False)
    _fast: jsonschema_rs.Draft202012Validator = field(init=False, repr=False, compare=False)
    _days: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise TypeInvalid("a type name is 3-64 letters or digits, starting upper-case")
        if not self.vct.startswith(("https://", "urn:")) or len(self.vct) > 255:
            raise TypeInvalid("vct must be an https: or urn: URI of at most 255 characters")
        if not all(_PATH.fullmatch(p) for p in self.disclosable):
            raise TypeInvalid("disclosable paths look like /claim or /claim/subclaim")
        # The platform's own claims (issue 18 §3): commitments are always shown, and an
        # opening (a commitment's salt) is never disclosed — it would give away the value.
        # A type that listed them would let a consent grant a lender the salt.
        if any(p.split("/")[1] in _RESERVED for p in self.disclosable):
            raise TypeInvalid(
                f"{zk.COMMITMENTS_CLAIM} and {zk.OPENINGS_CLAIM} are the platform's own"
                " claims and cannot be made disclosable"
            )
        if not 1 <= self.default_validity_days <= 3650:
            raise TypeInvalid("default validity is 1-3650 days")
        try:
            Draft202012Validator.check_schema(dict(self.schema))
            # Offline: a $ref to anything outside the schema is refused, never fetched.
            fast = jsonschema_rs.Draft202012Validator(dict(self.schema), offline=True)
        except (SchemaError, ValueError, jsonschema_rs.ReferencingError) as e:
            raise TypeInvalid("the schema is not a valid JSON Schema 2020-12 document") from e
        if self.schema.get("type") != "object":
            raise TypeInvalid("the schema must describe a JSON object")
        object.__setattr__(self, "_validator", Draft202012Validator(dict(self.schema)))
        object.__setattr__(self, "_fast", fast)
        object.__setattr__(self, "_days", tuple(_day_paths(self.schema, ())))

    def validate(self, claims: Mapping[str, Any]) -> None:
        """Check ``claims``; raises :class:`ClaimsInvalid` listing every failing field.

        A claim whose schema says ``format: date`` must be a day that exists, written
        ``YYYY-MM-DD`` (JSON Schema 2020-12 makes ``format`` an annotation only; the
        platform asserts this one format, which the ZK commitments of birth dates rely on).
        ``jsonschema-rs`` decides (about 60 times faster than ``jsonschema``, and what makes
        bulk issuance fast); ``jsonschema`` then describes the failures, field by field.
        A differential test holds the two to the same verdicts.
        """
        claims = dict(claims)
        days = [_not_a_day(path) for path in self._days if not _is_day(claims, path)]
        try:
            if self._fast.is_valid(claims) and not days:
                return
        except ValueError as e:  # a value JSON cannot hold (a set, bytes, NaN...)
            raise ClaimsInvalid("the claims are not JSON values") from e
        errors = sorted(
            [*(_describe(e) for e in self._validator.iter_errors(claims)), *days],
            key=lambda item: item["field"],
        )
        if not errors:  # the two libraries disagree: refuse, and say so
            errors = [
                {"field": "/" + "/".join(str(p) for p in e.instance_path), "message": e.message}
                for e in self._fast.iter_errors(claims)
            ]
        if errors:
            raise ClaimsInvalid(
                "the claims do not match the credential type", extra={"errors": errors}
            )

    def view(self) -> CredentialTypeView:
        """The type as served by the catalogue API."""
        return CredentialTypeView(
            name=self.name,
            vct=self.vct,
            schema_=dict(self.schema),
            disclosable=list(self.disclosable),
            default_validity_days=self.default_validity_days,
        )


def _day_paths(schema: Mapping[str, Any], path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    # The claims (through nested objects' properties) whose schema says ``format: date``.
    if schema.get("format") == "date":
        yield path
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for name, sub in properties.items():
            if isinstance(sub, Mapping):
                yield from _day_paths(sub, (*path, str(name)))


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _is_day(claims: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    # True when the claim at ``path`` is absent or not a string (the schema's own rules
    # speak for those) or is a day that exists, written YYYY-MM-DD.
    node: Any = claims
    for name in path:
        if not isinstance(node, Mapping) or name not in node:
            return True
        node = node[name]
    if not isinstance(node, str):
        return True
    if not _ISO_DAY.fullmatch(node):
        return False
    try:
        date.fromisoformat(node)
    except ValueError:
        return False
    return True


def _not_a_day(path: tuple[str, ...]) -> dict[str, str]:
    return {"field": "/" + "/".join(path), "message": "breaks the format rule (date)"}


def commit_score(score: int, salt: str) -> str:
    """The commitment to an exact score: base64url(SHA-256(RFC 8785 {"salt", "score"}))."""
    return b64url_encode(sha256(canonical_json({"salt": salt, "score": score})))


def verify_score_opening(commitment: str, opening: Mapping[str, Any]) -> int:
    """Check that ``opening`` (``{"score", "salt"}``) opens ``commitment``; returns the score.

    Raises :class:`IntegrityError` when it does not.
    """
    score, salt = opening.get("score"), opening.get("salt")
    if not isinstance(score, int) or isinstance(score, bool) or not isinstance(salt, str):
        raise IntegrityError("the score opening is malformed")
    if commit_score(score, salt) != commitment:
        raise IntegrityError("the score opening does not match the commitment")
    return score


def complete_score_commitment(
    credential_type: CredentialType, claims: Mapping[str, Any], *, salt: Callable[[], str]
) -> Mapping[str, Any]:
    """``claims`` with the score commitment the platform computes for an issuer that sent
    a score but no commitment (seed 001).

    When the type has a ``score_commitment`` claim, ``claims`` have none and their
    ``score_opening`` is an object with a ``score``: the opening gets a salt from ``salt()``
    if it has none, and ``score_commitment`` becomes :func:`commit_score` of the two.  Any
    other ``claims`` are returned as they are: a commitment the issuer sent is checked
    against its opening afterwards, never replaced, and malformed claims are left for the
    schema to describe.
    """
    opening = claims.get("score_opening")
    if (
        "score_commitment" in claims
        or not isinstance(opening, Mapping)
        or "score_commitment" not in credential_type.schema.get("properties", {})
    ):
        return claims
    score, given = opening.get("score"), opening.get("salt")
    if not isinstance(score, int) or isinstance(score, bool):
        return claims
    chosen = given if given is not None else salt()
    if not isinstance(chosen, str):
        return claims
    return {
        **claims,
        "score_opening": {**opening, "salt": chosen},
        "score_commitment": commit_score(score, chosen),
    }


_PSEUDONYM = r"^p[1-9][0-9]*:[A-Za-z0-9_-]{43}$"
_IDENTITY_TOKEN = r"^idt_[a-zA-Z0-9]{12,32}$"  # noqa: S105 - a pattern, not a secret
# A calendar day as RFC 3339's full-date (CredentialType.validate asserts ``format: date``).
_DAY = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}

COMMUNITY_TIER_VCT = zk.COMMUNITY_TIER_VCT
"""The dev rule set's ``aura.outputCredentialType`` (``reputation/dev_rules.json``), the
``community_score_at_least`` statement's type."""

_TIER_NAME = "^[a-z][a-z0-9_-]{0,31}$"  # reputation/rules.py's tier names
_CTX = "^[a-z][a-z0-9_-]{0,31}(:[a-z0-9_-]{1,32}){0,2}$"  # reputation's CTX_PATTERN
_RULE_SET = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "version", "hash"],
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{2,63}$"},
        "version": {"type": "integer", "minimum": 1},
        "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
}
# A tier as the Credit Readiness Credential carries it: which tier, in which context, under
# which rule set, as of which day.
_COMMUNITY_TIER_CLAIM = {
    "type": "object",
    "additionalProperties": False,
    "required": ["tier", "ctx", "rule_set", "as_of"],
    "properties": {
        "tier": {"type": "string", "pattern": _TIER_NAME},
        "ctx": {"type": "string", "pattern": _CTX},
        "rule_set": _RULE_SET,
        "as_of": _DAY,
    },
}

CREDIT_READINESS = CredentialType(
    name="CreditReadinessCredential",
    vct=zk.CREDIT_READINESS_VCT,
    schema={
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": [
            "enterprise",
            "credit_tier",
            "income_bracket",
            "debt_ratio_bracket",
            "score_commitment",
            "verification_sources",
        ],
        "properties": {
            "enterprise": {
                "type": "object",
                "additionalProperties": False,
                "required": ["identity_token"],
                "properties": {
                    "identity_token": {"type": "string", "pattern": _IDENTITY_TOKEN},
                    "gstin_pseudonym": {"type": "string", "pattern": _PSEUDONYM},
                    "udyam_pseudonym": {"type": "string", "pattern": _PSEUDONYM},
                },
            },
            "credit_tier": {"enum": ["A", "B", "C"]},
            "income_bracket": {"enum": ["<1L", "1L-5L", "5L-25L", "25L-1Cr", ">1Cr"]},
            "debt_ratio_bracket": {"enum": ["<0.2", "0.2-0.4", "0.4-0.6", ">0.6"]},
            "score_commitment": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
            "score_opening": {
                "type": "object",
                "additionalProperties": False,
                "required": ["score", "salt"],
                "properties": {
                    "score": {"type": "integer", "minimum": 300, "maximum": 900},
                    "salt": {"type": "string", "pattern": "^[A-Za-z0-9_-]{22,64}$"},
                },
            },
            "verification_sources": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {
                    "enum": [
                        "gstn",
                        "udyam",
                        "bank_statement",
                        "itr",
                        "field_verification",
                        "aa_fetch",
                    ]
                },
            },
            # Issue 19: the community tier the holder's did:key reached (optional; filled at
            # issuance when the subject has one), disclosable as a whole — never the score.
            "community_tier": _COMMUNITY_TIER_CLAIM,
        },
    },
    disclosable=(
        "/income_bracket",
        "/debt_ratio_bracket",
        "/score_opening",
        "/enterprise/gstin_pseudonym",
        "/enterprise/udyam_pseudonym",
        "/verification_sources",
        "/community_tier",
    ),
    default_validity_days=180,
)
"""Seed 000's Credit Readiness Credential: tier public; brackets, sources, score opening
disclosable."""


KYC = CredentialType(
    name="KycCredential",
    vct=zk.KYC_VCT,
    schema={
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["person", "verification_level", "birth_date", "verified_on"],
        "properties": {
            "person": {
                "type": "object",
                "additionalProperties": False,
                "required": ["identity_token"],
                "properties": {
                    "identity_token": {"type": "string", "pattern": _IDENTITY_TOKEN},
                    "aadhaar_pseudonym": {"type": "string", "pattern": _PSEUDONYM},
                    "pan_pseudonym": {"type": "string", "pattern": _PSEUDONYM},
                },
            },
            # identity/schemas.py's VerificationLevel, "none" left out: no KYC says nothing.
            "verification_level": {
                "enum": ["phone_verified", "document_verified", "in_person_verified"]
            },
            "birth_date": _DAY,
            "verified_on": _DAY,
        },
    },
    disclosable=(
        "/birth_date",
        "/person/aadhaar_pseudonym",
        "/person/pan_pseudonym",
    ),
    default_validity_days=730,
)
"""A person's KYC (issue 18's ``age_at_least``, issue 19's proof of personhood): the level
and the day of the check public; the birth date (committed at issuance) and the identity
documents' pseudonyms disclosable."""

SHG_MEMBERSHIP = CredentialType(
    name="ShgMembershipCredential",
    vct=zk.SHG_VCT,
    schema={
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["person", "shg_id", "role", "since"],
        "properties": {
            "person": {
                "type": "object",
                "additionalProperties": False,
                "required": ["identity_token"],
                "properties": {
                    "identity_token": {"type": "string", "pattern": _IDENTITY_TOKEN},
                },
            },
            # The group's own code (an NRLM SHG code, say): a group's, not a person's.
            "shg_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": 128,
                "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:/-]*$",
            },
            "role": {"enum": ["member", "president", "secretary", "treasurer"]},
            "since": _DAY,
        },
    },
    disclosable=("/shg_id", "/role", "/since"),
    default_validity_days=365,
)
"""Membership of a self-help group (issue 18's ``member_of_group``): the group id (committed
at issuance), the member's role and since when, each disclosable."""

COMMUNITY_TIER = CredentialType(
    name="CommunityTierCredential",
    vct=COMMUNITY_TIER_VCT,
    schema={
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["tier", "ctx", "rule_set", "as_of", "score_commitment"],
        "properties": {
            "tier": {"type": "string", "pattern": _TIER_NAME},
            "ctx": {"type": "string", "pattern": _CTX},
            "rule_set": _RULE_SET,
            "as_of": _DAY,
            # The exact score in micro-units (reputation's score × 10^6, never negative in a
            # credential), committed as the Credit Readiness Credential's score is (seed 001);
            # the opening is disclosable, and a statement reading /score_opening/score gets its
            # Poseidon commitment at issuance (issue 18 §3).
            "score_commitment": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
            "score_opening": {
                "type": "object",
                "additionalProperties": False,
                "required": ["score", "salt"],
                "properties": {
                    "score": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                    "salt": {"type": "string", "pattern": "^[A-Za-z0-9_-]{22,64}$"},
                },
            },
        },
    },
    disclosable=("/score_opening",),
    default_validity_days=90,
)
"""Issue 19's capability credential (the rule set's ``aura.outputCredentialType``): the tier,
context, rule set and day public to whoever the holder presents it to; the exact community
score committed, its opening disclosable."""
