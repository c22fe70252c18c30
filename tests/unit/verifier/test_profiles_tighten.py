"""Compliance profiles only tighten: for any policy, profile, credential and context, what
the profiled policy accepts the policy accepts too.

Policies, credentials and contexts are drawn from one small universe (a few types, claim
paths, values, marks, ages), so that both acceptances and denials are common; the same
property check is shown to catch a profile that loosens.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from credit_commons.verifier.policy import (
    AllOf,
    AnyOf,
    EvaluationContext,
    MaxCredentialAge,
    Policy,
    PolicyDenied,
    Predicate,
    RequireClaims,
    RequireHolderBinding,
    RequireIssuerKind,
    RequirePurpose,
    RequireStatusCheck,
    RequireTrustMarks,
    RequireType,
    Rule,
    VerifiedCredential,
)
from credit_commons.verifier.profiles import PROFILES, Profile, apply_profile

NOW = datetime(2026, 6, 1, tzinfo=UTC)
TYPES = ["Income", "Membership", "Land"]
MARKS = ["bank", "state-dpi", "shg-federation"]
KINDS = ["platform", "https", "did:web", "did:key", "x509"]
PATHS: list[tuple[str | int, ...]] = [("income",), ("since",), ("address", "country"), ("tags", 0)]
AGES = [60, 86400, 30 * 86400, 400 * 86400]

values = st.one_of(
    st.integers(-5, 5),
    st.sampled_from([0.5, 1e9]),
    st.sampled_from(["IN", "NP", "a", "2026-01-01", "2026-05-31T23:00:00+05:30"]),
    st.booleans(),
)


@st.composite
def predicates(draw: st.DrawFn) -> Predicate:
    op = draw(st.sampled_from(["eq", "neq", "gte", "lte", "in", "exists"]))
    path = draw(st.sampled_from(PATHS))
    if op == "exists":
        return Predicate(path, "exists")
    if op == "in":
        return Predicate(path, "in", tuple(draw(st.lists(values, min_size=1, max_size=3))))
    value = draw(values.filter(lambda v: not (op in ("gte", "lte") and isinstance(v, bool))))
    return Predicate(path, op, value)


leaves: st.SearchStrategy[Rule] = st.one_of(
    st.frozensets(st.sampled_from(TYPES), min_size=1).map(RequireType),
    st.lists(st.sampled_from(PATHS), min_size=1, max_size=2).map(lambda p: RequireClaims(tuple(p))),
    predicates(),
    st.frozensets(st.sampled_from(MARKS), min_size=1, max_size=2).map(RequireTrustMarks),
    st.just(RequireStatusCheck()),
    st.just(RequireHolderBinding()),
    st.sampled_from(AGES).map(MaxCredentialAge),
    st.frozensets(st.sampled_from(["credit", "kyc"]), max_size=1).map(RequirePurpose),
    st.frozensets(st.sampled_from(KINDS), min_size=1, max_size=3).map(RequireIssuerKind),
)
rules: st.SearchStrategy[Rule] = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda r: AllOf(tuple(r))),
        st.lists(inner, min_size=1, max_size=3).map(lambda r: AnyOf(tuple(r))),
    ),
    max_leaves=6,
)
policies = st.builds(Policy, st.just("p"), st.integers(1, 3), rules)


@st.composite
def credentials(draw: st.DrawFn) -> VerifiedCredential:
    claims: dict[str, Any] = {}
    if draw(st.booleans()):
        claims["income"] = draw(values)
    if draw(st.booleans()):
        claims["since"] = draw(values)
    if draw(st.booleans()):
        claims["address"] = {"country": draw(values)}
    if draw(st.booleans()):
        claims["tags"] = draw(st.lists(values, max_size=2))
    age = draw(st.one_of(st.none(), st.sampled_from([0, 59, 61, 86400, 40 * 86400, 500 * 86400])))
    return VerifiedCredential(
        types=draw(st.frozensets(st.sampled_from(TYPES), min_size=1, max_size=2)),
        issuer="did:web:issuer.example",
        issuer_kind=draw(st.sampled_from(KINDS)),
        issued_at=None if age is None else NOW - timedelta(seconds=age),
        claims=claims,
        status_checked=draw(st.booleans()),
        holder_bound=draw(st.booleans()),
        marks=draw(st.frozensets(st.sampled_from(MARKS), max_size=3)),
    )


contexts = st.builds(
    EvaluationContext, st.just(NOW), st.sampled_from([None, "", "credit", "kyc", "other"])
)


def accepts(policy: Policy, credential: VerifiedCredential, context: EvaluationContext) -> bool:
    try:
        policy.check(credential, context)
    except PolicyDenied:
        return False
    return True


def check_tightens(
    transform: Callable[[Policy], Policy], examples: int = 500, *, shrink: bool = True
) -> None:
    """The property: whatever ``transform(policy)`` accepts, ``policy`` accepts.  Raises
    (hypothesis's falsifying example) when some generated case breaks it; ``shrink=False``
    raises on the first such case as generated, not shrunk to a minimal one (the tests that
    only need the check to fail: shrinking was most of their time)."""

    phases = tuple(Phase) if shrink else (Phase.explicit, Phase.reuse, Phase.generate)

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=phases,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(policies, credentials(), contexts)
    def property_(policy: Policy, credential: VerifiedCredential, ctx: EvaluationContext) -> None:
        if accepts(transform(policy), credential, ctx):
            assert accepts(policy, credential, ctx), "the profile accepted what the policy denies"

    property_()


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profiles_only_tighten(name: str) -> None:
    check_tightens(lambda policy: apply_profile(policy, name))


def test_profiles_keep_id_and_version_and_add_their_rules() -> None:
    policy = Policy("p", 7, RequireType(frozenset({"Income"})))
    assert apply_profile(policy, "default") == policy
    for name in ("india-dpdp", "eu"):
        profiled = apply_profile(policy, name)
        assert (profiled.id, profiled.version) == ("p", 7)
        assert isinstance(profiled.rule, AllOf)
        assert profiled.rule.rules[0] == policy.rule


def test_the_generated_cases_accept_and_deny_often() -> None:
    # The property means something only if generated policies accept a fair share of
    # generated credentials under the profiles too (else "accepts => accepts" is vacuous).
    counts = {"policy": 0, "dpdp": 0, "eu": 0, "total": 0}

    @settings(max_examples=600, derandomize=True, database=None, deadline=None)
    @given(policies, credentials(), contexts)
    def count(policy: Policy, credential: VerifiedCredential, ctx: EvaluationContext) -> None:
        counts["total"] += 1
        counts["policy"] += accepts(policy, credential, ctx)
        counts["dpdp"] += accepts(apply_profile(policy, "india-dpdp"), credential, ctx)
        counts["eu"] += accepts(apply_profile(policy, "eu"), credential, ctx)

    count()
    assert counts["total"] >= 600
    assert 0.1 * counts["total"] < counts["policy"] < 0.9 * counts["total"]
    assert counts["dpdp"] >= 5
    assert counts["eu"] >= 5


@pytest.mark.parametrize(
    "loosening",
    [
        # Drops the verifier's rule and asks only for its own.
        lambda p: Policy(p.id, p.version, RequireStatusCheck()),
        # Offers its rule as an alternative to the verifier's.
        lambda p: Policy(p.id, p.version, AnyOf((p.rule, RequireHolderBinding()))),
        # Relaxes the age limits in the verifier's policy.
        lambda p: Policy(p.id, p.version, _relax_ages(p.rule)),
    ],
    ids=["replace", "alternative", "relax-age"],
)
def test_the_check_catches_a_loosening_profile(loosening: Callable[[Policy], Policy]) -> None:
    with pytest.raises(AssertionError):
        check_tightens(loosening, shrink=False)


def test_a_loosening_profile_object_is_caught() -> None:
    sloppy = Profile("sloppy", (RequireStatusCheck(),))
    # A profile that forgets the policy's rule: its apply is replaced to model the bug.
    with pytest.raises(AssertionError):
        check_tightens(lambda p: Policy(p.id, p.version, AllOf(sloppy.rules)), shrink=False)


def _relax_ages(rule: Rule) -> Rule:
    if isinstance(rule, MaxCredentialAge):
        return MaxCredentialAge(min(rule.seconds * 1000, 100 * 365 * 86400))
    if isinstance(rule, AllOf):
        return AllOf(tuple(_relax_ages(r) for r in rule.rules))
    if isinstance(rule, AnyOf):
        return AnyOf(tuple(_relax_ages(r) for r in rule.rules))
    return rule
