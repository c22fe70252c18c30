"""Capability credentials on SQLite and PostgreSQL (issue 19): members whose KYC credentials
this platform issued vouch, a checkpoint is scored, the jobs step issues the queued
CommunityTierCredential — bound to the subject's did:key, sealed for the subject who holds
the KYC credential, its score committed and only its opening disclosable — exactly once;
a row whose subject cannot be addressed stays queued; a Credit Readiness Credential issued
to the same holder key carries the tier as a Disclosure, and to another key none — issued
directly or through an OID4VCI offer (the tier added at redemption, when the key is known)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from tests.factories import kyc_claims, readiness_claims

from credit_commons.core.db import transaction
from credit_commons.formats.jws import sign_compact
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer.catalogue import verify_score_opening
from credit_commons.issuer.models import CredentialRow
from credit_commons.jobs import capability_step
from credit_commons.keys import KeyType, PrivateKey, encode_did_key, public_key_to_jwk
from credit_commons.ledger.worker import LogWorker
from credit_commons.reputation import RuleSet, capability, new_nonce, rules_service, sign_event
from credit_commons.reputation import service as reputation_service
from credit_commons.reputation.models import ReputationMemberRow
from credit_commons.reputation.scores_service import ScoringState, score_checkpoint
from credit_commons.reputation.scores_store import CapabilityQueueRow, ScoreRow
from credit_commons.runtime import Runtime
from credit_commons.wallet.held import held_facts
from credit_commons.wallet.store import StoredCredential
from credit_commons.zk import KYC_VCT


@dataclass
class Member:
    key: PrivateKey
    subject: str

    @property
    def did(self) -> str:
        return encode_did_key(self.key.public_key)

    @property
    def jwk(self) -> dict[str, str]:
        return public_key_to_jwk(self.key.public_key)


class Story:
    def __init__(self, rt: Runtime, http: TestClient) -> None:
        self.rt, self.http = rt, http
        with transaction(rt.sessions) as session:
            admin, _ = issue_admin_token(session, rt, "desk")
            rules_service.register_dev_rule_set(session, rt, actor=rt.operator_actor("reputation"))
        self.admin = {"Authorization": f"Bearer {admin}"}
        self.nonce = 0

    def rules(self) -> RuleSet:
        with transaction(self.rt.sessions) as session:
            return rules_service.active_rule_set(session, self.rt, self.rt.clock.now()).rule_set

    def issue(self, type_name: str, subject: str, claims: dict[str, Any], jwk: Any) -> str:
        issued = self.http.post(
            "/v1/credentials",
            json={"type": type_name, "subject": subject, "claims": claims, "holder_jwk": jwk},
            headers=self.admin,
        )
        assert issued.status_code == 201, issued.text
        return str(issued.json()["credential"])

    def member(self, n: int) -> Member:
        made = self.http.post(
            "/v1/identities", json={"roles": ["business"], "profile": {"name": f"M{n}"}}
        )
        assert made.status_code == 201, made.text
        member = Member(PrivateKey.generate(KeyType.ED25519), made.json()["identity_token"])
        kyc = self.issue("KycCredential", member.subject, kyc_claims(member.subject), member.jwk)
        status = SdJwt.parse(kyc).payload["status"]["status_list"]
        with transaction(self.rt.sessions) as session:
            reputation_service.register_member(
                session,
                self.rt,
                did=member.did,
                vct=KYC_VCT,
                issuer=self.rt.settings.public_url,
                credential_sha256=f"{n:064x}",
                status_ref=f"{status['uri']}#{status['idx']}",
                rules=self.rules(),
            )
        return member

    def vouch(self, sender: Member, to: Member) -> None:
        self.nonce += 1
        now = self.rt.clock.now()
        event = sign_event(
            sender.key,
            type="vouch",
            to=to.did,
            ctx="shg:savings",
            epoch=now.strftime("%Y-%m"),
            nonce=new_nonce(self.nonce.to_bytes(12, "big")),
            issued_at=now - timedelta(minutes=1),
        )
        with transaction(self.rt.sessions) as session:
            reputation_service.submit_event(session, self.rt, event.document(), self.rules())

    def score(self) -> None:
        LogWorker(self.rt, steps=[]).run_once(force_checkpoint=True)
        assert score_checkpoint(self.rt, ScoringState()) is not None

    def queue(self) -> list[CapabilityQueueRow]:
        with transaction(self.rt.sessions) as session:
            rows = list(session.scalars(select(CapabilityQueueRow)))
            session.expunge_all()
            return rows


@pytest.fixture
def story(runtime: Runtime, client: TestClient) -> Story:
    return Story(runtime, client)


def _claims(text: str) -> dict[str, Any]:
    return dict(held_facts(StoredCredential("c1", "https://x", "x", text, "now")).claims)


def test_a_member_reaching_silver_receives_a_community_tier_credential_once(story: Story) -> None:
    rt = story.rt
    members = [story.member(n) for n in range(6)]
    subject, others = members[0], members[1:]
    for voucher in others:  # five distinct KYC members vouch for the subject
        story.vouch(voucher, subject)
    story.vouch(subject, others[0])
    story.score()
    (queued,) = story.queue()
    assert (queued.subject_did, queued.ctx, queued.tier) == (subject.did, "shg:savings", "silver")
    assert queued.issued_at is None

    step = capability_step(interval=0)
    # A subject whose KYC credential is not one this platform issued cannot be addressed:
    # the row stays queued (its claim rolled back with the transaction).
    with transaction(rt.sessions) as session:
        session.execute(
            update(ReputationMemberRow)
            .where(ReputationMemberRow.did == subject.did)
            .values(status_ref="https://elsewhere.example/statuslists/1#3")
        )
    assert step(rt, 0) == {"capabilities_unaddressed": 1}
    assert story.queue()[0].issued_at is None
    kyc = kyc_claims(subject.subject)
    kyc_text = story.issue("KycCredential", subject.subject, kyc, subject.jwk)
    status = SdJwt.parse(kyc_text).payload["status"]["status_list"]
    with transaction(rt.sessions) as session:
        session.execute(
            update(ReputationMemberRow)
            .where(ReputationMemberRow.did == subject.did)
            .values(status_ref=f"{status['uri']}#{status['idx']}")
        )

    assert step(rt, 0) == {"capabilities_issued": 1}
    assert step(rt, 0) == {}  # issued once: nothing is pending any more
    (issued,) = story.queue()
    assert issued.issued_at is not None
    assert issued.credential_ref is not None
    with transaction(rt.sessions) as session:
        # A second claim of the same row loses: the conditional update finds it issued.
        assert not capability.claim_capability(session, issued.id, rt.clock.now())
        credential = session.get(CredentialRow, issued.credential_ref)
        assert credential is not None
        assert (credential.type_name, credential.subject_token) == (
            "CommunityTierCredential",
            subject.subject,
        )
        text = rt.vault.open(
            session,
            bytes(credential.sealed),
            subject=subject.subject,
            purpose="credentials",
            record=credential.id,
        ).decode()
        record = session.get(ScoreRow, (subject.did, "shg:savings"))
        assert record is not None
    sd_jwt = SdJwt.parse(text)
    assert sd_jwt.payload["vct"] == story.rules().aura.output_credential_type
    assert sd_jwt.payload["cnf"]["jwk"] == subject.jwk  # bound to the subject's did:key
    assert sd_jwt.payload["tier"] == "silver"
    assert sd_jwt.payload["ctx"] == "shg:savings"
    assert sd_jwt.payload["rule_set"] == {
        "id": record.rule_set_id,
        "version": record.rule_set_version,
        "hash": record.rule_set_hash,
    }
    assert sd_jwt.payload["as_of"] == record.as_of.isoformat()
    # The score is committed in the signed payload; its value only in a Disclosure.
    assert "score_opening" not in sd_jwt.payload
    full = _claims(text)
    score = verify_score_opening(sd_jwt.payload["score_commitment"], full["score_opening"])
    # The holder picks it up with its subject proof; another key's proof is refused.
    url = "/v1/reputation/capabilities"
    query = {"did": subject.did, "ctx": "shg:savings"}
    iat = int(rt.clock.now().timestamp())
    audience = rt.settings.public_url

    def proof(key: PrivateKey, did: str = subject.did) -> dict[str, str]:
        token = capability.sign_subject_proof(
            key, did=did, ctx="shg:savings", audience=audience, iat=iat
        )
        return {"Subject-Proof": token}

    picked = story.http.get(url, params=query, headers=proof(subject.key))
    assert picked.status_code == 200, picked.text
    assert picked.json() == {
        "credentials": [{"tier": "silver", "ctx": "shg:savings", "credential": text}]
    }
    assert story.http.get(url, params=query).status_code == 422
    refused = story.http.get(url, params=query, headers=proof(others[0].key))
    assert refused.status_code == 401
    assert refused.json()["code"] == "reputation.subject_proof_invalid"
    # A member without a credential gets an empty list, only with its own proof.
    empty = story.http.get(
        url,
        params={**query, "did": others[0].did},
        headers=proof(others[0].key, others[0].did),
    )
    assert empty.json() == {"credentials": []}

    # The served record's score, in micro-units.
    assert json.loads(bytes(record.record))["score"] == f"{score // 10**6}.{score % 10**6:06d}"
    assert score >= 25_000_000  # silver's minScore


def test_a_credit_readiness_credential_carries_the_holders_community_tier(story: Story) -> None:
    members = [story.member(n) for n in range(6)]
    subject, others = members[0], members[1:]
    for voucher in others:
        story.vouch(voucher, subject)
    story.score()
    assert capability_step(interval=0)(story.rt, 0) == {"capabilities_issued": 1}

    text = story.issue(
        "CreditReadinessCredential",
        subject.subject,
        readiness_claims(subject.subject, 712),
        subject.jwk,
    )
    # A Disclosure (consent decides who sees it), never in the signed payload in clear.
    assert "community_tier" not in SdJwt.parse(text).payload
    tier = _claims(text)["community_tier"]
    assert (tier["tier"], tier["ctx"]) == ("silver", "shg:savings")
    assert set(tier) == {"tier", "ctx", "rule_set", "as_of"}  # no score, no factor

    # Another holder key (a member without a capability credential): no tier.
    other = story.issue(
        "CreditReadinessCredential",
        others[0].subject,
        readiness_claims(others[0].subject, 712),
        others[0].jwk,
    )
    assert "community_tier" not in _claims(other)


def _redeemed(story: Story, subject: str, holder: PrivateKey) -> str:
    """A Credit Readiness Credential offered to ``subject`` (OID4VCI pre-authorized code)
    and redeemed with ``holder``'s proof: the holder key is known only here."""
    offered = story.http.post(
        "/v1/credential-offers",
        json={
            "type": "CreditReadinessCredential",
            "subject": subject,
            "claims": readiness_claims(subject, 712),
            "tx_code": False,
        },
        headers=story.admin,
    )
    assert offered.status_code == 201, offered.text
    grant = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
    code = offered.json()["credential_offer"]["grants"][grant]["pre-authorized_code"]
    tokens = story.http.post(
        "/token",
        data={"grant_type": grant, "pre-authorized_code": code},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert tokens.status_code == 200, tokens.text
    issuer = story.http.get("/.well-known/openid-credential-issuer").json()["credential_issuer"]
    c_nonce = story.http.post("/nonce").json()["c_nonce"]
    proof = sign_compact(
        {"typ": "openid4vci-proof+jwt", "jwk": public_key_to_jwk(holder.public_key)},
        {"aud": issuer, "iat": int(story.rt.clock.now().timestamp()), "nonce": c_nonce},
        holder,
    )
    answer = story.http.post(
        "/credential",
        json={
            "credential_configuration_id": "CreditReadinessCredential",
            "proofs": {"jwt": [proof]},
        },
        headers={"Authorization": f"Bearer {tokens.json()['access_token']}"},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["credentials"][0]["credential"])


def test_an_offered_credit_readiness_credential_gets_the_tier_at_redemption(
    story: Story,
) -> None:
    members = [story.member(n) for n in range(6)]
    subject, others = members[0], members[1:]
    for voucher in others:
        story.vouch(voucher, subject)
    story.score()
    assert capability_step(interval=0)(story.rt, 0) == {"capabilities_issued": 1}

    text = _redeemed(story, subject.subject, subject.key)
    assert "community_tier" not in SdJwt.parse(text).payload  # a Disclosure, as issued
    tier = _claims(text)["community_tier"]
    assert (tier["tier"], tier["ctx"]) == ("silver", "shg:savings")
    assert set(tier) == {"tier", "ctx", "rule_set", "as_of"}
    # Redeemed with another key (one without a capability credential): no tier.
    other = _redeemed(story, subject.subject, PrivateKey.generate(KeyType.ED25519))
    assert "community_tier" not in _claims(other)


def test_rows_that_stay_queued_do_not_starve_newer_ones(story: Story) -> None:
    # Review finding: the step took the oldest `batch` pending rows, so rows that stay
    # queued (stale, unaddressed, refused) at the front could hold the page for ever.
    members = [story.member(n) for n in range(6)]
    subject, others = members[0], members[1:]
    for voucher in others:
        story.vouch(voucher, subject)
    story.score()
    (queued,) = story.queue()
    with transaction(story.rt.sessions) as session:
        for n in range(2):  # two older rows whose subjects hold no record: stale for ever
            session.add(
                CapabilityQueueRow(
                    id=f"cap_0000000000000000000000000{n}",
                    rule_set_id=queued.rule_set_id,
                    subject_did=others[n].did,
                    ctx="shg:savings",
                    tier="gold",
                    reason_hash=f"{n}" * 64,
                    created_at=queued.created_at,
                )
            )
    step = capability_step(interval=0, batch=1)
    assert step(story.rt, 0) == {"capabilities_stale": 1}
    assert step(story.rt, 0) == {"capabilities_stale": 1}
    assert step(story.rt, 0) == {"capabilities_issued": 1}  # its turn comes
    assert step(story.rt, 0) == {"capabilities_stale": 1}  # and round again
    issued = {row.id: row.issued_at for row in story.queue()}
    assert issued[queued.id] is not None
    assert [i for i, at in issued.items() if at is None] == [
        "cap_00000000000000000000000000",
        "cap_00000000000000000000000001",
    ]
