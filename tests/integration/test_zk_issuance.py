"""Issuance commitments (issue 18 §3) on both databases: a Credit Readiness Credential issued
while the engine's statements are registered carries ``zk_commitments`` (signed, always
visible) and ``zk_openings`` (the salts, in Disclosures only the holder gets); the openings
open the commitments; a VC-JWT gets none; an issuer may not send its own; the other
statements (income bracket, and age and SHG membership about the catalogue's
KycCredential and ShgMembershipCredential) prove and verify through the same glue."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import GENEROUS_RATE_LIMITS, make_settings
from tests.factories import community_tier_claims, kyc_claims, readiness_claims, shg_claims

from credit_commons.core.db import transaction
from credit_commons.core.migrate import upgrade
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.gateway.app import create_app
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer.sd_jwt import present
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime
from credit_commons.verifier.reasons import VerificationDenied
from credit_commons.verifier.zk_step import ZkCheck, ZkPredicate, check_predicates
from credit_commons.wallet.held import held_facts
from credit_commons.wallet.store import StoredCredential
from credit_commons.wallet.zk_proofs import PredicateUnprovable, prove
from credit_commons.zk import KYC_VCT, SHG_VCT, commit, day_number, registry

BASE = "https://commons.test"


class World:
    def __init__(self, rt: Runtime, http: TestClient) -> None:
        self.rt, self.http = rt, http
        with transaction(rt.sessions) as session:
            admin, _ = issue_admin_token(session, rt, "desk")
            registry.register_dev_statements(session, rt, actor=rt.operator_actor("zk"))
        self.admin = {"Authorization": f"Bearer {admin}"}

    def subject(self) -> str:
        made = self.http.post(
            "/v1/identities", json={"roles": ["business"], "profile": {"name": "M"}}
        )
        assert made.status_code == 201, made.text
        return str(made.json()["identity_token"])

    def issue(self, type_name: str, claims: dict[str, Any], fmt: str = "dc+sd-jwt") -> str:
        key = PrivateKey.generate(KeyType.ED25519)
        issued = self.http.post(
            "/v1/credentials",
            json={
                "type": type_name,
                "subject": claims.pop("_subject", None) or self.subject(),
                "claims": claims,
                "holder_jwk": public_key_to_jwk(key.public_key),
                "format": fmt,
            },
            headers=self.admin,
        )
        assert issued.status_code == 201, issued.text
        return str(issued.json()["credential"])


@pytest.fixture
def world(tmp_path: Path, backend_url: str) -> Iterator[World]:
    settings = make_settings(
        tmp_path, database_url=backend_url, public_url=BASE, rate_limits=GENEROUS_RATE_LIMITS
    )
    rt = Runtime.build(settings)
    upgrade(rt.engine)
    with TestClient(create_app(settings, runtime=rt), base_url=BASE) as http:
        yield World(rt, http)
    rt.close()


def _claims(text: str) -> dict[str, Any]:
    return dict(held_facts(StoredCredential("c1", BASE, "x", text, "now")).claims)


def test_a_credential_carries_signed_commitments_and_hidden_openings(world: World) -> None:
    subject = world.subject()
    text = world.issue(
        "CreditReadinessCredential", {**readiness_claims(subject, 712), "_subject": subject}
    )
    sd_jwt = SdJwt.parse(text)
    # Signed in the issuer JWT in clear: the commitments; not the salts.
    commitments = sd_jwt.payload["zk_commitments"]
    assert sorted(commitments) == ["income_bracket", "score"]
    assert "zk_openings" not in sd_jwt.payload
    # The holder's Disclosures open them.
    full = _claims(text)
    assert commit(712, int(full["zk_openings"]["score"])) == int(commitments["score"])
    assert commit(2, int(full["zk_openings"]["income_bracket"])) == int(
        commitments["income_bracket"]
    )
    # A presentation that discloses nothing shows the commitments and no trace of a salt.
    shown = SdJwt.parse(present(sd_jwt, disclose=set()))
    assert not shown.disclosures
    assert "zk_openings" not in str(shown.payload)


def test_no_commitments_in_a_vc_jwt_and_none_from_the_issuer(world: World) -> None:
    subject = world.subject()
    text = world.issue("CreditReadinessCredential", readiness_claims(subject), fmt="vc+jwt")
    assert "zk_commitments" not in text  # a JWT: base64url, but the claim name would show
    refused = world.http.post(
        "/v1/credentials",
        json={
            "type": "CreditReadinessCredential",
            "subject": subject,
            "claims": {**readiness_claims(subject), "zk_commitments": {"score": "1"}},
            "holder_jwk": public_key_to_jwk(PrivateKey.generate().public_key),
        },
        headers=world.admin,
    )
    assert refused.status_code == 422


def _verify(world: World, text: str, predicate: ZkPredicate, proof: dict[str, Any]) -> None:
    with transaction(world.rt.sessions) as session:
        check = ZkCheck(
            predicates=(predicate,),
            proofs={predicate.id: proof},
            nonce="n" * 32,
            audience="redirect_uri:https://lender.example/cb",
            request_hash="ab" * 32,
            today=day_number(datetime.now(UTC).date()),
            load=lambda statement_id: registry.load_statement(session, world.rt, statement_id),
            used=lambda digest: registry.proof_used(session, digest),
        )
        claims = _claims(text)
        check_predicates(check, predicate.credential_query_id, str(claims["vct"]), claims)


def _prove(world: World, text: str, statement_id: str, params: dict[str, Any]) -> dict[str, Any]:
    with transaction(world.rt.sessions) as session:
        statement = registry.get_statement(session, world.rt, statement_id)[1]
    return prove(
        StoredCredential("c1", BASE, "x", text, "now"),
        statement,
        params,
        nonce="n" * 32,
        audience="redirect_uri:https://lender.example/cb",
        request_hash="ab" * 32,
        today=datetime.now(UTC).date(),
    )


@pytest.mark.parametrize(
    ("statement_id", "params", "holds"),
    [
        ("income_bracket_at_most", {"limit": 2}, True),  # 5L-25L is bracket 2
        ("income_bracket_at_most", {"limit": 1}, False),
        ("age_at_least", {"min_age_days": 60 * 365}, True),
        ("age_at_least", {"min_age_days": 90 * 365}, False),
        ("member_of_group", {"groups": ("shg-17", "shg-42", "shg-99")}, True),
        ("member_of_group", {"groups": ("shg-1", "shg-2")}, False),
        ("community_score_at_least", {"threshold": 25_000_000}, True),  # 31.25 ≥ silver's 25
        ("community_score_at_least", {"threshold": 31_250_001}, False),
    ],
)
def test_the_other_statements_prove_and_verify(
    world: World, statement_id: str, params: dict[str, Any], holds: bool
) -> None:
    subject = world.subject()
    if statement_id == "income_bracket_at_most":
        text = world.issue("CreditReadinessCredential", readiness_claims(subject))
    elif statement_id == "age_at_least":
        text = world.issue("KycCredential", kyc_claims(subject, "1958-03-14"))
    elif statement_id == "community_score_at_least":
        text = world.issue("CommunityTierCredential", community_tier_claims(31_250_000))
        assert "score_opening" not in SdJwt.parse(text).payload  # a Disclosure
    else:
        text = world.issue("ShgMembershipCredential", shg_claims(subject, "shg-42"))
    predicate = ZkPredicate("p", statement_id, "q", params)
    if not holds:
        with pytest.raises(PredicateUnprovable):
            _prove(world, text, statement_id, params)
        return
    proof = _prove(world, text, statement_id, params)
    _verify(world, text, predicate, proof)
    # The same proof for a stricter parameter is refused.
    stricter = {
        "income_bracket_at_most": {"limit": 1},
        "age_at_least": {"min_age_days": 70 * 365},
        "member_of_group": {"groups": ("shg-42", "shg-43")},
        "community_score_at_least": {"threshold": 30_000_000},
    }[statement_id]
    with pytest.raises(VerificationDenied) as denied:
        _verify(world, text, ZkPredicate("p", statement_id, "q", stricter), proof)
    assert denied.value.reason.value == "zk_param_mismatch"


def test_a_birth_date_before_1970_is_committed(world: World) -> None:
    subject = world.subject()
    full = _claims(world.issue("KycCredential", kyc_claims(subject, "1901-01-01")))
    assert int(full["zk_commitments"]["birth_date"]) > 0
    assert day_number(date(1901, 1, 1)) == date(1901, 1, 1).toordinal() > 0


@pytest.mark.parametrize(
    ("type_name", "claims", "committed", "hidden"),
    [
        ("KycCredential", kyc_claims, "birth_date", "1958-03-14"),
        ("ShgMembershipCredential", shg_claims, "shg_id", "shg-42"),
    ],
)
def test_the_catalogues_kyc_and_shg_types_commit_their_proved_claim(
    world: World, type_name: str, claims: Any, committed: str, hidden: str
) -> None:
    subject = world.subject()
    text = world.issue(type_name, claims(subject))
    sd_jwt = SdJwt.parse(text)
    # The proved claim is committed in clear and itself a Disclosure: not in the signed
    # payload, so a presentation that discloses nothing shows the commitment alone.
    assert sorted(sd_jwt.payload["zk_commitments"]) == [committed]
    assert hidden not in str(sd_jwt.payload)
    shown = SdJwt.parse(present(sd_jwt, disclose=set()))
    assert hidden not in str(shown.payload) + str(shown.disclosures)
    assert _claims(text)[committed] == hidden


@pytest.mark.parametrize(
    ("type_name", "claims", "field"),
    [
        ("KycCredential", kyc_claims("idt_000000000000", birth_date="1990-02-30"), "/birth_date"),
        ("KycCredential", kyc_claims("idt_000000000000", aadhaar="1234"), "/aadhaar"),
        (
            "KycCredential",
            kyc_claims("idt_000000000000", verification_level="none"),
            "/verification_level",
        ),
        ("ShgMembershipCredential", shg_claims("idt_000000000000", shg_id=""), "/shg_id"),
        ("ShgMembershipCredential", shg_claims("idt_000000000000", role="boss"), "/role"),
    ],
)
def test_the_kyc_and_shg_types_refuse_bad_claims_by_field(
    world: World, type_name: str, claims: dict[str, Any], field: str
) -> None:
    subject = world.subject()
    claims = {**claims, "person": {"identity_token": subject}}
    refused = world.http.post(
        "/v1/credentials",
        json={
            "type": type_name,
            "subject": subject,
            "claims": claims,
            "holder_jwk": public_key_to_jwk(PrivateKey.generate().public_key),
        },
        headers=world.admin,
    )
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "credential.claims_invalid"
    fields = [e["field"] for e in problem["errors"]]
    # A raw identifier is no claim of the type: "additionalProperties" at the top.
    assert field in fields or (field == "/aadhaar" and "/" in fields), problem


def _put_type(world: World, name: str, vct: str, claim: str) -> Any:
    return world.http.put(
        "/v1/credential-types",
        json={
            "name": name,
            "vct": vct,
            "schema": {"type": "object", "properties": {claim: {"type": "string"}}},
            "disclosable": [f"/{claim}"],
        },
        headers=world.admin,
    )


def test_a_day_that_does_not_exist_is_refused_by_field_even_without_format(
    world: World,
) -> None:
    # An administrator's KycCredential whose schema does not say ``format: date``: the
    # commitment step refuses the day, as a field error, and nothing is issued.
    defined = _put_type(world, "KycCredential", KYC_VCT, "birth_date")
    assert defined.status_code in (200, 201), defined.text
    refused = world.http.post(
        "/v1/credentials",
        json={
            "type": "KycCredential",
            "subject": world.subject(),
            "claims": {"birth_date": "1990-02-30"},
            "holder_jwk": public_key_to_jwk(PrivateKey.generate().public_key),
        },
        headers=world.admin,
    )
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "credential.claims_invalid"
    assert problem["errors"] == [{"field": "/birth_date", "message": "breaks the format rule"}]


def test_a_vct_names_one_type_and_an_earlier_type_of_a_built_in_vct_stays(
    world: World,
) -> None:
    # Defined before the platform built the type in (as docs/zk.md once told): it stays
    # the type of that vct, and the catalogue still opens.
    mine = _put_type(world, "MyShgCredential", SHG_VCT, "shg_id")
    assert mine.status_code in (200, 201), mine.text
    listed = world.http.get("/v1/credential-types")
    assert listed.status_code == 200, listed.text
    by_vct = {t["vct"]: t["name"] for t in listed.json()}
    assert by_vct[SHG_VCT] == "MyShgCredential"
    assert by_vct[KYC_VCT] == "KycCredential"
    # Another type may not take a vct that names one already.
    taken = _put_type(world, "OtherKycCredential", KYC_VCT, "birth_date")
    assert taken.status_code == 409, taken.text
    assert taken.json()["code"] == "credential_type.vct_taken"
