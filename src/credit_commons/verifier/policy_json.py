"""The JSON form of policies: documents ``{"id", "version", "rule"}`` parsed at the boundary.

A rule is an object whose ``rule`` member names it (``all_of``, ``any_of``,
``require_type``, ``require_claims``, ``predicate``, ``require_trust_marks``,
``require_status_check``, ``require_holder_binding``, ``max_credential_age``,
``require_purpose``, ``require_issuer_kind``); docs/verifier.md shows each.  Documents are
bounded: :data:`MAX_POLICY_BYTES` of I-JSON, rules nested at most eight deep, at most 128
rules, lists of at most 64 members, claim paths of at most 16 segments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from credit_commons.core.encoding import JsonObject, json_decode
from credit_commons.core.errors import CommonsError
from credit_commons.verifier.policy import (
    AllOf,
    AnyOf,
    MaxCredentialAge,
    Policy,
    PolicyInvalid,
    Predicate,
    PredicateOp,
    RequireClaims,
    RequireHolderBinding,
    RequireIssuerKind,
    RequirePurpose,
    RequireStatusCheck,
    RequireTrustMarks,
    RequireType,
    Rule,
)

__all__ = [
    "MAX_POLICY_BYTES",
    "parse_policy",
    "policy_document",
    "rule_from_json",
    "rule_to_json",
]

#: The largest policy document accepted, in bytes of JSON.
MAX_POLICY_BYTES: Final = 16_384
_MAX_DEPTH: Final = 8
_MAX_RULES: Final = 128
_MAX_PATH: Final = 16
_MAX_LIST: Final = 64
_MAX_TEXT: Final = 256

_Text = Annotated[str, Field(min_length=1, max_length=_MAX_TEXT)]
_Segment = (
    Annotated[str, Field(min_length=1, max_length=_MAX_TEXT)]
    | Annotated[int, Field(ge=0, le=10_000)]
)
_Path = Annotated[list[_Segment], Field(min_length=1, max_length=_MAX_PATH)]
_Value = Annotated[str, Field(max_length=_MAX_TEXT)] | int | float | bool


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _AllOfDoc(_Doc):
    rule: Literal["all_of"]
    rules: Annotated[list[_RuleDoc], Field(min_length=1, max_length=_MAX_LIST)]


class _AnyOfDoc(_Doc):
    rule: Literal["any_of"]
    rules: Annotated[list[_RuleDoc], Field(min_length=1, max_length=_MAX_LIST)]


class _TypeDoc(_Doc):
    rule: Literal["require_type"]
    types: Annotated[list[_Text], Field(min_length=1, max_length=_MAX_LIST)]


class _ClaimsDoc(_Doc):
    rule: Literal["require_claims"]
    paths: Annotated[list[_Path], Field(min_length=1, max_length=_MAX_LIST)]


class _PredicateDoc(_Doc):
    rule: Literal["predicate"]
    path: _Path
    op: PredicateOp
    value: _Value | Annotated[list[_Value], Field(min_length=1, max_length=_MAX_LIST)] | None = None


class _MarksDoc(_Doc):
    rule: Literal["require_trust_marks"]
    marks: Annotated[list[_Text], Field(min_length=1, max_length=_MAX_LIST)]


class _StatusDoc(_Doc):
    rule: Literal["require_status_check"]


class _BindingDoc(_Doc):
    rule: Literal["require_holder_binding"]


class _AgeDoc(_Doc):
    rule: Literal["max_credential_age"]
    seconds: int


class _PurposeDoc(_Doc):
    rule: Literal["require_purpose"]
    purposes: Annotated[list[_Text], Field(max_length=_MAX_LIST)] = []


class _IssuerKindDoc(_Doc):
    rule: Literal["require_issuer_kind"]
    kinds: Annotated[
        list[Literal["platform", "https", "did:web", "did:key", "x509"]],
        Field(min_length=1, max_length=5),
    ]


_RuleDoc: TypeAlias = Annotated[
    _AllOfDoc
    | _AnyOfDoc
    | _TypeDoc
    | _ClaimsDoc
    | _PredicateDoc
    | _MarksDoc
    | _StatusDoc
    | _BindingDoc
    | _AgeDoc
    | _PurposeDoc
    | _IssuerKindDoc,
    Field(discriminator="rule"),
]
_AllOfDoc.model_rebuild()
_AnyOfDoc.model_rebuild()


class _PolicyDoc(_Doc):
    id: str
    version: int
    rule: _RuleDoc


_RULE_ADAPTER: TypeAdapter[_RuleDoc] = TypeAdapter(_RuleDoc)


@dataclass
class _Budget:
    rules: int = 0


def _build(doc: _RuleDoc, budget: _Budget, depth: int) -> Rule:
    budget.rules += 1
    if budget.rules > _MAX_RULES:
        raise PolicyInvalid(f"a policy has at most {_MAX_RULES} rules")
    if depth > _MAX_DEPTH:
        raise PolicyInvalid(f"a policy nests at most {_MAX_DEPTH} levels")
    if isinstance(doc, _AllOfDoc):
        return AllOf(tuple(_build(d, budget, depth + 1) for d in doc.rules))
    if isinstance(doc, _AnyOfDoc):
        return AnyOf(tuple(_build(d, budget, depth + 1) for d in doc.rules))
    if isinstance(doc, _TypeDoc):
        return RequireType(frozenset(doc.types))
    if isinstance(doc, _ClaimsDoc):
        return RequireClaims(tuple(tuple(p) for p in doc.paths))
    if isinstance(doc, _PredicateDoc):
        value = tuple(doc.value) if isinstance(doc.value, list) else doc.value
        return Predicate(tuple(doc.path), doc.op, value)
    if isinstance(doc, _MarksDoc):
        return RequireTrustMarks(frozenset(doc.marks))
    if isinstance(doc, _StatusDoc):
        return RequireStatusCheck()
    if isinstance(doc, _BindingDoc):
        return RequireHolderBinding()
    if isinstance(doc, _AgeDoc):
        return MaxCredentialAge(doc.seconds)
    if isinstance(doc, _PurposeDoc):
        return RequirePurpose(frozenset(doc.purposes))
    return RequireIssuerKind(frozenset(doc.kinds))


def _json_depth(value: object, depth: int = 0) -> int:
    if isinstance(value, dict):
        return max((_json_depth(v, depth + 1) for v in value.values()), default=depth + 1)
    if isinstance(value, list):
        return max((_json_depth(v, depth + 1) for v in value), default=depth + 1)
    return depth


def rule_from_json(value: object) -> Rule:
    """The rule a decoded JSON value describes.  Raises :class:`PolicyInvalid`."""
    # Each rule level is two JSON levels (its object and its "rules" list), a path two more.
    if _json_depth(value) > 2 * _MAX_DEPTH + 4:
        raise PolicyInvalid(f"a policy nests at most {_MAX_DEPTH} levels")
    try:
        doc = _RULE_ADAPTER.validate_python(value)
    except PydanticValidationError as e:
        raise PolicyInvalid(f"not a policy rule: {_first_error(e)}") from e
    return _build(doc, _Budget(), 1)


def _first_error(e: PydanticValidationError) -> str:
    error = e.errors(include_url=False, include_input=False)[0]
    where = "/".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def parse_policy(document: bytes | str | Mapping[str, Any]) -> Policy:
    """Parse a policy JSON document (at most :data:`MAX_POLICY_BYTES`) into a
    :class:`Policy`.  Raises :class:`PolicyInvalid`."""
    if isinstance(document, bytes | str):
        raw = document.encode() if isinstance(document, str) else document
        if len(raw) > MAX_POLICY_BYTES:
            raise PolicyInvalid(f"a policy document is at most {MAX_POLICY_BYTES} bytes")
        try:
            value: object = json_decode(raw)
        except CommonsError as e:
            raise PolicyInvalid(f"a policy document is I-JSON: {e.detail}") from e
    else:
        value = dict(document)
    if not isinstance(value, dict) or set(value) - {"id", "version", "rule"}:
        raise PolicyInvalid("a policy document is an object with id, version and rule")
    if not isinstance(value.get("id"), str):
        raise PolicyInvalid("id: a policy id is a string")
    version = value.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise PolicyInvalid("version: a policy version is an integer")
    return Policy(value["id"], version, rule_from_json(value.get("rule")))


def rule_to_json(rule: Rule) -> JsonObject:
    """The JSON value of ``rule`` (the inverse of :func:`rule_from_json`, members sorted so
    that equal rules have equal documents)."""
    if isinstance(rule, AllOf | AnyOf):
        name = "all_of" if isinstance(rule, AllOf) else "any_of"
        return {"rule": name, "rules": [rule_to_json(r) for r in rule.rules]}
    if isinstance(rule, RequireType):
        return {"rule": "require_type", "types": sorted(rule.types)}
    if isinstance(rule, RequireClaims):
        return {"rule": "require_claims", "paths": [list(p) for p in rule.paths]}
    if isinstance(rule, Predicate):
        doc: JsonObject = {"rule": "predicate", "path": list(rule.path), "op": rule.op}
        if rule.value is not None:
            doc["value"] = list(rule.value) if isinstance(rule.value, tuple) else rule.value
        return doc
    if isinstance(rule, RequireTrustMarks):
        return {"rule": "require_trust_marks", "marks": sorted(rule.marks)}
    if isinstance(rule, RequireStatusCheck):
        return {"rule": "require_status_check"}
    if isinstance(rule, RequireHolderBinding):
        return {"rule": "require_holder_binding"}
    if isinstance(rule, MaxCredentialAge):
        return {"rule": "max_credential_age", "seconds": rule.seconds}
    if isinstance(rule, RequirePurpose):
        return {"rule": "require_purpose", "purposes": sorted(rule.purposes)}
    if isinstance(rule, RequireIssuerKind):
        return {"rule": "require_issuer_kind", "kinds": sorted(rule.kinds)}
    raise PolicyInvalid(f"{type(rule).__name__} has no JSON form")


def policy_document(policy: Policy) -> JsonObject:
    """The JSON document of ``policy`` (what :func:`parse_policy` reads)."""
    return {"id": policy.id, "version": policy.version, "rule": rule_to_json(policy.rule)}
