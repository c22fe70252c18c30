"""The policy engine: each rule's acceptance and its precise denial, composition, the JSON
documents and their bounds, and the version floor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from credit_commons.verifier.policy import (
    AllOf,
    AnyOf,
    EvaluationContext,
    MaxCredentialAge,
    Policy,
    PolicyDenied,
    PolicyInvalid,
    Predicate,
    RequireClaims,
    RequireHolderBinding,
    RequireIssuerKind,
    RequirePurpose,
    RequireStatusCheck,
    RequireTrustMarks,
    RequireType,
    VerifiedCredential,
    check_version_floor,
    instant,
)
from credit_commons.verifier.policy_json import (
    MAX_POLICY_BYTES,
    parse_policy,
    policy_document,
    rule_from_json,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CTX = EvaluationContext(now=NOW, purpose="credit-assessment")
VCT = "https://commons.example/vct/income/v1"


def credential(**changes: Any) -> VerifiedCredential:
    values: dict[str, Any] = {
        "types": frozenset({VCT}),
        "issuer": "did:web:coop.example",
        "issuer_kind": "did:web",
        "issued_at": NOW - timedelta(days=10),
        "claims": {
            "income": 42_000,
            "ratio": 0.35,
            "name": "Asha",
            "birthdate": "1990-04-02",
            "verified_at": "2026-05-01T10:00:00+05:30",
            "address": {"country": "IN", "lines": ["1 Main Rd", "Pune"]},
            "member": True,
            "nothing": None,
        },
        "status_checked": True,
        "holder_bound": True,
        "marks": frozenset({"bank", "state-dpi"}),
    }
    values.update(changes)
    return VerifiedCredential(**values)


def denied(rule: Any, cred: VerifiedCredential | None = None, ctx: EvaluationContext = CTX) -> str:
    with pytest.raises(PolicyDenied) as info:
        rule.check(cred or credential(), ctx)
    return info.value.reason


# -- single rules ---------------------------------------------------------------------------


def test_require_type() -> None:
    RequireType(frozenset({VCT, "Other"})).check(credential(), CTX)
    assert denied(RequireType(frozenset({"Other"}))) == "type_not_accepted"


def test_require_claims_paths_objects_and_arrays() -> None:
    RequireClaims((("income",), ("address", "country"), ("address", "lines", 1))).check(
        credential(), CTX
    )
    assert denied(RequireClaims((("address", "lines", 2),))) == "claim_missing"
    assert denied(RequireClaims((("address", "zip"),))) == "claim_missing"
    assert denied(RequireClaims((("nothing",),))) == "claim_missing"  # null is not disclosed
    assert denied(RequireClaims((("income", "x"),))) == "claim_missing"
    assert denied(RequireClaims((("address", 0),))) == "claim_missing"  # not an array


@pytest.mark.parametrize(
    ("path", "op", "value", "holds"),
    [
        (("income",), "gte", 40_000, True),
        (("income",), "gte", 42_000, True),
        (("income",), "gte", 42_001, False),
        (("income",), "lte", 42_000, True),
        (("income",), "lte", 41_999.5, False),
        (("ratio",), "lte", 0.4, True),
        (("income",), "eq", 42_000, True),
        (("income",), "eq", 42_000.0, True),
        (("income",), "neq", 1, True),
        (("income",), "neq", 42_000, False),
        (("income",), "eq", "42000", False),  # a string is not a number
        (("income",), "neq", "42000", False),  # nor "not equal": not comparable
        (("name",), "eq", "Asha", True),
        (("name",), "in", ("Ravi", "Asha"), True),
        (("name",), "in", ("Ravi",), False),
        (("name",), "gte", "Aa", True),
        (("member",), "eq", True, True),
        (("member",), "eq", 1, False),  # a boolean is not a number
        (("birthdate",), "lte", "2008-06-01", True),  # born on or before: adult
        (("birthdate",), "lte", "1990-04-01", False),
        (("birthdate",), "gte", "1990-04-01T23:59:59Z", True),
        # 10:00 at +05:30 is 04:30Z: an instant, not a string comparison.
        (("verified_at",), "gte", "2026-05-01T04:30:00Z", True),
        (("verified_at",), "gte", "2026-05-01T04:30:01Z", False),
        (("verified_at",), "eq", "2026-05-01T04:30:00.000000000Z", True),
        (("name",), "gte", "2020-01-01", False),  # not a date: not comparable
        (("address", "country"), "in", ("IN", "NP"), True),
        (("address", "lines", 1), "eq", "Pune", True),
        (("income",), "exists", None, True),
    ],
)
def test_predicates(path: tuple[Any, ...], op: Any, value: Any, holds: bool) -> None:
    rule = Predicate(path, op, value)
    if holds:
        rule.check(credential(), CTX)
    else:
        assert denied(rule) == "predicate_failed"


def test_predicate_on_a_missing_claim() -> None:
    assert denied(Predicate(("salary",), "exists")) == "claim_missing"
    assert denied(Predicate(("salary",), "gte", 1)) == "claim_missing"
    assert denied(Predicate(("nothing",), "exists")) == "claim_missing"


@pytest.mark.parametrize(
    ("op", "value"),
    [
        ("exists", 1),
        ("in", ()),
        ("in", "x"),
        ("eq", None),
        ("gte", ("a",)),
        ("gte", True),
        ("eq", float("nan")),
    ],
)
def test_predicate_construction_refuses(op: Any, value: Any) -> None:
    with pytest.raises(PolicyInvalid):
        Predicate(("x",), op, value)


def test_instants() -> None:
    assert instant("2026-01-01") == datetime(2026, 1, 1, tzinfo=UTC)
    assert instant("2026-01-01T05:30:00+05:30") == datetime(2026, 1, 1, tzinfo=UTC)
    assert instant("2026-01-01T00:00:00.5Z") == datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert instant("2026-01-01T00:00:00") is None  # no offset: no instant
    assert instant("2026-02-30") is None
    assert instant("tomorrow") is None


def test_trust_marks_status_binding_kind() -> None:
    RequireTrustMarks(frozenset({"bank"})).check(credential(), CTX)
    assert denied(RequireTrustMarks(frozenset({"bank", "shg-federation"}))) == (
        "trust_mark_missing"
    )
    RequireStatusCheck().check(credential(), CTX)
    assert denied(RequireStatusCheck(), credential(status_checked=False)) == "status_unchecked"
    RequireHolderBinding().check(credential(), CTX)
    assert denied(RequireHolderBinding(), credential(holder_bound=False)) == "holder_unbound"
    RequireIssuerKind(frozenset({"did:web", "x509"})).check(credential(), CTX)
    assert denied(RequireIssuerKind(frozenset({"x509"}))) == "issuer_kind_not_accepted"


def test_max_credential_age() -> None:
    MaxCredentialAge(10 * 86400).check(credential(), CTX)
    assert denied(MaxCredentialAge(10 * 86400 - 1)) == "credential_too_old"
    assert denied(MaxCredentialAge(60), credential(issued_at=None)) == "credential_age_unknown"
    with pytest.raises(PolicyInvalid):
        MaxCredentialAge(0)


def test_purpose() -> None:
    RequirePurpose().check(credential(), CTX)
    RequirePurpose(frozenset({"credit-assessment"})).check(credential(), CTX)
    assert denied(RequirePurpose(), ctx=EvaluationContext(NOW)) == "purpose_missing"
    assert denied(RequirePurpose(frozenset({"kyc"}))) == "purpose_not_allowed"


# -- composition -----------------------------------------------------------------------------


def test_empty_compositions_are_refused() -> None:
    with pytest.raises(PolicyInvalid):
        AllOf(())
    with pytest.raises(PolicyInvalid):
        AnyOf(())
    with pytest.raises(PolicyInvalid):
        rule_from_json({"rule": "all_of", "rules": []})


def test_all_of_raises_the_first_failure() -> None:
    rule = AllOf((RequireStatusCheck(), RequireType(frozenset({"Other"})), RequireHolderBinding()))
    assert denied(rule, credential(holder_bound=False)) == "type_not_accepted"


def test_any_of() -> None:
    rule = AnyOf((RequireType(frozenset({"Other"})), Predicate(("income",), "gte", 1)))
    rule.check(credential(), CTX)
    with pytest.raises(PolicyDenied) as info:
        AnyOf((RequireType(frozenset({"Other"})), RequireStatusCheck())).check(
            credential(status_checked=False), CTX
        )
    assert info.value.reason == "no_alternative"
    assert "type_not_accepted" in info.value.detail
    assert "status_unchecked" in info.value.detail


def test_version_floor() -> None:
    check_version_floor(3, 3)
    check_version_floor(4, 3)
    with pytest.raises(PolicyDenied) as info:
        check_version_floor(2, 3)
    assert info.value.reason == "policy_version_downgrade"


# -- documents --------------------------------------------------------------------------------

DOCUMENT = {
    "id": "lender-income",
    "version": 2,
    "rule": {
        "rule": "all_of",
        "rules": [
            {"rule": "require_type", "types": [VCT]},
            {"rule": "require_claims", "paths": [["income"], ["address", "country"]]},
            {"rule": "predicate", "path": ["income"], "op": "gte", "value": 20000},
            {"rule": "predicate", "path": ["address", "country"], "op": "in", "value": ["IN"]},
            {"rule": "predicate", "path": ["name"], "op": "exists"},
            {
                "rule": "any_of",
                "rules": [
                    {"rule": "require_trust_marks", "marks": ["bank"]},
                    {"rule": "require_trust_marks", "marks": ["shg-federation"]},
                ],
            },
            {"rule": "require_status_check"},
            {"rule": "require_holder_binding"},
            {"rule": "max_credential_age", "seconds": 86400 * 30},
            {"rule": "require_purpose", "purposes": ["credit-assessment"]},
            {"rule": "require_issuer_kind", "kinds": ["did:web", "x509"]},
        ],
    },
}


def test_document_round_trip_and_evaluation() -> None:
    policy = parse_policy(json.dumps(DOCUMENT))
    assert (policy.id, policy.version) == ("lender-income", 2)
    policy.check(credential(), CTX)
    assert parse_policy(policy_document(policy)) == policy
    assert parse_policy(json.dumps(policy_document(policy)).encode()) == policy
    with pytest.raises(PolicyDenied) as info:
        policy.check(credential(claims={"income": 10, "address": {"country": "IN"}}), CTX)
    assert info.value.reason == "predicate_failed"


@pytest.mark.parametrize(
    "document",
    [
        {**DOCUMENT, "extra": 1},
        {**DOCUMENT, "id": "has space"},
        {**DOCUMENT, "id": ""},
        {**DOCUMENT, "version": 0},
        {**DOCUMENT, "version": True},
        {**DOCUMENT, "version": "2"},
        {**DOCUMENT, "rule": {"rule": "unknown"}},
        {**DOCUMENT, "rule": {"rule": "require_type", "types": []}},
        {**DOCUMENT, "rule": {"rule": "require_status_check", "extra": 1}},
        {**DOCUMENT, "rule": {"rule": "max_credential_age", "seconds": True}},
        {**DOCUMENT, "rule": {"rule": "max_credential_age", "seconds": "60"}},
        {**DOCUMENT, "rule": {"rule": "predicate", "path": [], "op": "exists"}},
        {**DOCUMENT, "rule": {"rule": "predicate", "path": ["a"], "op": "like", "value": 1}},
        {**DOCUMENT, "rule": {"rule": "predicate", "path": ["a"], "op": "in", "value": []}},
        {**DOCUMENT, "rule": {"rule": "predicate", "path": ["a"], "op": "gte"}},
        {**DOCUMENT, "rule": {"rule": "predicate", "path": [-1], "op": "exists"}},
        {**DOCUMENT, "rule": {"rule": "require_issuer_kind", "kinds": ["ftp"]}},
        {"id": "x", "version": 1},
        [],
    ],
)
def test_bad_documents_are_refused(document: Any) -> None:
    with pytest.raises(PolicyInvalid):
        parse_policy(json.dumps(document))


def test_size_depth_and_count_bounds() -> None:
    big = {**DOCUMENT, "rule": {"rule": "require_type", "types": ["x" * 200] * 60}}
    big["rule"]["types"] = ["x" * 250 + str(i) for i in range(64)]
    assert len(json.dumps(big)) > MAX_POLICY_BYTES
    with pytest.raises(PolicyInvalid, match="bytes"):
        parse_policy(json.dumps(big))
    deep: dict[str, Any] = {"rule": "require_status_check"}
    for _ in range(9):
        deep = {"rule": "all_of", "rules": [deep]}
    with pytest.raises(PolicyInvalid, match="levels"):
        rule_from_json(deep)
    many = {"rule": "all_of", "rules": [{"rule": "all_of", "rules": [
        {"rule": "require_status_check"}] * 60}] * 3}  # fmt: skip
    with pytest.raises(PolicyInvalid, match="rules"):
        rule_from_json(many)
    with pytest.raises(PolicyInvalid):
        parse_policy(b'{"id": "a", "id": "b", "version": 1, "rule": {}}')  # duplicate member


def test_policy_value_checks() -> None:
    with pytest.raises(PolicyInvalid):
        Policy("ok", 0, RequireStatusCheck())
    with pytest.raises(ValueError, match="aware"):
        credential(issued_at=datetime(2026, 1, 1))


def test_a_huge_integer_claim_is_compared_not_overflowed() -> None:
    # float(10**400) raises OverflowError: the claim must compare as the integer it is.
    huge = credential(claims={"income": 10**400, "ratio": float("inf")})
    Predicate(("income",), "gte", 42_000).check(huge, CTX)
    Predicate(("income",), "gte", 1.5).check(huge, CTX)
    assert denied(Predicate(("income",), "lte", 42_000), huge) == "predicate_failed"
    assert denied(Predicate(("income",), "eq", 42_000.0), huge) == "predicate_failed"
    # A non-finite float claim is no number to compare.
    assert denied(Predicate(("ratio",), "gte", 0), huge) == "predicate_failed"
