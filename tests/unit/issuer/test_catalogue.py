"""The credential catalogue: type definitions, claim validation, the score commitment."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_commons import zk
from credit_commons.core.encoding import b64url_encode, canonical_json_reference, sha256
from credit_commons.core.errors import IntegrityError, ValidationError
from credit_commons.issuer.catalogue import (
    COMMUNITY_TIER,
    CREDIT_READINESS,
    KYC,
    SHG_MEMBERSHIP,
    ClaimsInvalid,
    CredentialType,
    TypeInvalid,
    commit_score,
    complete_score_commitment,
    verify_score_opening,
)

SALT = "c2FsdHNhbHRzYWx0c2FsdA"


def good_claims() -> dict[str, object]:
    return {
        "enterprise": {"identity_token": "idt_abcdefghijklmnop"},
        "credit_tier": "B",
        "income_bracket": "5L-25L",
        "debt_ratio_bracket": "0.2-0.4",
        "score_commitment": commit_score(712, SALT),
        "score_opening": {"score": 712, "salt": SALT},
        "verification_sources": ["gstn", "bank_statement"],
    }


def test_credit_readiness_accepts_good_claims() -> None:
    CREDIT_READINESS.validate(good_claims())
    assert CREDIT_READINESS.view().vct.startswith("https://")


def test_field_level_errors_name_paths_and_rules_but_never_values() -> None:
    claims = good_claims()
    claims["credit_tier"] = "Z-secret-tier"
    claims["verification_sources"] = []
    claims["enterprise"] = {"identity_token": "not-a-token", "nickname": "Ravi"}
    del claims["income_bracket"]
    with pytest.raises(ClaimsInvalid) as info:
        CREDIT_READINESS.validate(claims)
    errors = info.value.extra["errors"]
    fields = {e["field"] for e in errors}
    assert {
        "/credit_tier",
        "/verification_sources",
        "/enterprise/identity_token",
        "/enterprise",
        "/",
    } <= fields
    text = str(errors)
    for secret in ("Z-secret-tier", "not-a-token", "Ravi"):
        assert secret not in text
    assert any("must be one of A, B, C" in e["message"] for e in errors)


def test_score_commitment_opens_only_with_the_right_score_and_salt() -> None:
    salt = secrets.token_urlsafe(16)
    commitment = commit_score(650, salt)
    assert verify_score_opening(commitment, {"score": 650, "salt": salt}) == 650
    for bad in (
        {"score": 651, "salt": salt},
        {"score": 650, "salt": salt + "x"},
        {"score": "650", "salt": salt},
        {},
    ):
        with pytest.raises(IntegrityError):
            verify_score_opening(commitment, bad)


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": "lowercase"},
        {"vct": "http://insecure.example/vct"},
        {"disclosable": ("no-slash",)},
        {"disclosable": ("/a", "/zk_openings")},  # a salt opens its commitment
        {"disclosable": ("/zk_openings/score",)},
        {"disclosable": ("/zk_commitments",)},  # the platform's own, always shown
        {"schema": {"type": "array"}},
        {"schema": {"type": "object", "properties": {"x": {"type": "not-a-type"}}}},
        {"default_validity_days": 0},
    ],
)
def test_bad_type_definitions_are_refused(overrides: dict[str, object]) -> None:
    values: dict[str, object] = {
        "name": "TestCredential",
        "vct": "https://example.org/vct/test",
        "schema": {"type": "object"},
        "disclosable": ("/a",),
        "default_validity_days": 30,
    }
    values.update(overrides)
    with pytest.raises(TypeInvalid):
        CredentialType(**values)  # type: ignore[arg-type]


@given(
    score=st.one_of(st.integers(-(2**60), 2**60), st.integers(0, 1000)),
    salt=st.one_of(
        st.text(alphabet="ABCxyz019_-", max_size=64),
        st.text(max_size=20),  # quotes, backslashes, control and non-ASCII characters
    ),
)
def test_the_direct_commitment_text_is_rfc8785(score: int, salt: str) -> None:
    if abs(score) >= 2**53:  # no RFC 8785 form: refused on both paths
        with pytest.raises(ValidationError):
            commit_score(score, salt)
        return
    expected = b64url_encode(sha256(canonical_json_reference({"salt": salt, "score": score})))
    assert commit_score(score, salt) == expected


def kyc_claims(birth_date: object = "1958-03-14") -> dict[str, object]:
    return {
        "person": {"identity_token": "idt_abcdefghijklmnop", "pan_pseudonym": "p1:" + "A" * 43},
        "verification_level": "in_person_verified",
        "birth_date": birth_date,
        "verified_on": "2026-11-02",
    }


def test_the_kyc_and_shg_types_are_the_statements_types() -> None:
    assert (KYC.vct, SHG_MEMBERSHIP.vct) == (zk.KYC_VCT, zk.SHG_VCT)
    assert CREDIT_READINESS.vct == zk.CREDIT_READINESS_VCT
    # The proved claims are Disclosures, so a presentation can leave them out.
    assert "/birth_date" in KYC.disclosable
    assert "/shg_id" in SHG_MEMBERSHIP.disclosable
    KYC.validate(kyc_claims())
    SHG_MEMBERSHIP.validate(
        {
            "person": {"identity_token": "idt_abcdefghijklmnop"},
            "shg_id": "MH-PUNE-0042",
            "role": "secretary",
            "since": "2019-01-31",
        }
    )


@pytest.mark.parametrize(
    "birth_date", ["1958-02-30", "1958-13-01", "19580314", "1958-3-14", "2023-02-29", 19580314]
)
def test_a_date_claim_must_be_a_day_that_exists(birth_date: object) -> None:
    with pytest.raises(ClaimsInvalid) as info:
        KYC.validate(kyc_claims(birth_date))
    fields = [e["field"] for e in info.value.extra["errors"]]
    assert set(fields) == {"/birth_date"}
    assert str(birth_date) not in str(info.value.extra)


def test_a_leap_day_is_a_day() -> None:
    KYC.validate(kyc_claims("2024-02-29"))


def test_a_raw_identifier_is_no_claim_of_the_kyc_type() -> None:
    claims = kyc_claims()
    claims["person"] = {"identity_token": "idt_abcdefghijklmnop", "aadhaar": "123412341234"}
    with pytest.raises(ClaimsInvalid) as info:
        KYC.validate(claims)
    assert [e["field"] for e in info.value.extra["errors"]] == ["/person"]


RULE_SET = {"id": "shg-rules", "version": 1, "hash": "a4" * 32}


def tier_claims(**changes: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "tier": "silver",
        "ctx": "shg:savings",
        "rule_set": dict(RULE_SET),
        "as_of": "2026-12-20",
        "score_commitment": commit_score(31_250_000, SALT),
        "score_opening": {"score": 31_250_000, "salt": SALT},
    }
    claims.update(changes)
    return claims


def test_the_community_tier_type_is_the_dev_rule_sets_output_type() -> None:
    from datetime import UTC, datetime  # noqa: PLC0415

    from credit_commons.reputation import parse_rule_set  # noqa: PLC0415
    from credit_commons.reputation.rules_service import dev_rule_set_document  # noqa: PLC0415

    document = dev_rule_set_document(
        valid_from=datetime(2026, 12, 14, tzinfo=UTC), trusted_issuer="https://issuer.example"
    )
    rules = parse_rule_set(document)
    assert rules.aura.output_credential_type == COMMUNITY_TIER.vct
    assert [t.name for t in rules.aura.tiers] == ["bronze", "silver", "gold"]
    for tier in rules.aura.tiers:
        COMMUNITY_TIER.validate(tier_claims(tier=tier.name))
    for ctx in rules.contexts:
        COMMUNITY_TIER.validate(tier_claims(ctx=ctx))


def test_the_community_score_is_committed_and_only_its_opening_is_disclosable() -> None:
    assert COMMUNITY_TIER.disclosable == ("/score_opening",)
    claims = tier_claims()
    del claims["score_commitment"]
    completed = complete_score_commitment(COMMUNITY_TIER, claims, salt=lambda: SALT)
    assert completed["score_commitment"] == commit_score(31_250_000, SALT)
    COMMUNITY_TIER.validate(completed)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tier": "Silver"}, "/tier"),
        ({"ctx": "shg:"}, "/ctx"),
        ({"rule_set": {**RULE_SET, "hash": "A4" * 32}}, "/rule_set/hash"),
        ({"rule_set": {**RULE_SET, "version": 0}}, "/rule_set/version"),
        ({"as_of": "2026-02-30"}, "/as_of"),
        ({"score_opening": {"score": -1, "salt": SALT}}, "/score_opening/score"),
        ({"score": 31_250_000}, "/"),
    ],
)
def test_the_community_tier_type_refuses_bad_claims(change: dict[str, object], field: str) -> None:
    with pytest.raises(ClaimsInvalid) as info:
        COMMUNITY_TIER.validate(tier_claims(**change))
    assert {e["field"] for e in info.value.extra["errors"]} == {field}


def test_the_credit_readiness_credential_may_carry_a_disclosable_community_tier() -> None:
    assert "/community_tier" in CREDIT_READINESS.disclosable
    tier = {"tier": "silver", "ctx": "shg:savings", "rule_set": RULE_SET, "as_of": "2026-12-20"}
    CREDIT_READINESS.validate({**good_claims(), "community_tier": tier})
    CREDIT_READINESS.validate(good_claims())  # optional
    # The tier and where it holds, never the score behind it.
    with pytest.raises(ClaimsInvalid) as info:
        CREDIT_READINESS.validate({**good_claims(), "community_tier": {**tier, "score": "31"}})
    assert [e["field"] for e in info.value.extra["errors"]] == ["/community_tier"]
