"""Membership revocation on SQLite and PostgreSQL (issue 19): a member whose KYC credential
this platform issued vouches; the credential is revoked at the issuer; the jobs step reads
the status through the membership's status reference and ends the membership —
``revoked_at`` and a ``reputation.member_revoked`` spine event (no DID in it) in one
transaction — so the next vouch is ``reputation.sender_locked``; reruns change nothing; a
valid credential and an unreadable reference leave the membership as it is.  A suspension
pauses the membership and a reinstatement resumes it; a credential whose subject was erased
excludes the DID from scoring."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.factories import kyc_claims

from credit_commons.core.db import transaction
from credit_commons.core.net import OutboundFetcher
from credit_commons.events import EventRow
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer.models import CredentialRow
from credit_commons.jobs import default_steps, membership_status_step
from credit_commons.keys import KeyType, PrivateKey, encode_did_key, public_key_to_jwk
from credit_commons.reputation import (
    RecipientExcluded,
    RuleSet,
    SenderLocked,
    new_nonce,
    rules_service,
    sign_event,
)
from credit_commons.reputation import service as reputation_service
from credit_commons.reputation.models import ReputationExclusionRow, ReputationMemberRow
from credit_commons.reputation.scores_bundle import did_sha256
from credit_commons.reputation.scores_service import scoring_members
from credit_commons.runtime import Runtime
from credit_commons.verifier.foreign import FOREIGN_ISSUERS, ForeignIssuers
from credit_commons.zk import KYC_VCT


@dataclass
class Member:
    key: PrivateKey
    credential_id: str
    credential_sha256: str

    @property
    def did(self) -> str:
        return encode_did_key(self.key.public_key)


class World:
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

    def member(self, n: int, *, status_ref: str | None = None, issuer: str | None = None) -> Member:
        made = self.http.post(
            "/v1/identities", json={"roles": ["business"], "profile": {"name": f"M{n}"}}
        )
        assert made.status_code == 201, made.text
        subject = made.json()["identity_token"]
        key = PrivateKey.generate(KeyType.ED25519)
        issued = self.http.post(
            "/v1/credentials",
            json={
                "type": "KycCredential",
                "subject": subject,
                "claims": kyc_claims(subject),
                "holder_jwk": public_key_to_jwk(key.public_key),
            },
            headers=self.admin,
        )
        assert issued.status_code == 201, issued.text
        status = SdJwt.parse(issued.json()["credential"]).payload["status"]["status_list"]
        member = Member(key, issued.json()["credential_id"], f"{n:064x}")
        with transaction(self.rt.sessions) as session:
            reputation_service.register_member(
                session,
                self.rt,
                did=member.did,
                vct=KYC_VCT,
                issuer=issuer or self.rt.settings.public_url,
                credential_sha256=member.credential_sha256,
                status_ref=status_ref or f"{status['uri']}#{status['idx']}",
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

    def set_status(self, member: Member, action: str) -> None:
        answer = self.http.post(
            f"/v1/credentials/{member.credential_id}/{action}", headers=self.admin
        )
        assert answer.status_code == 200, answer.text

    def row(self, member: Member) -> ReputationMemberRow:
        with transaction(self.rt.sessions) as session:
            row = session.scalars(
                select(ReputationMemberRow).where(ReputationMemberRow.did == member.did)
            ).one()
            session.expunge(row)
            return row

    def spine(self, kind: str) -> list[EventRow]:
        with transaction(self.rt.sessions) as session:
            rows = list(session.scalars(select(EventRow).where(EventRow.type == kind)))
            session.expunge_all()
            return rows

    def is_member(self, member: Member) -> bool:
        with transaction(self.rt.sessions) as session:
            return reputation_service.is_member(session, self.rt, member.did)


@pytest.fixture
def world(runtime: Runtime, client: TestClient) -> World:
    return World(runtime, client)


def test_a_revoked_kyc_credential_ends_the_membership_and_locks_the_sender(world: World) -> None:
    alice, bob = world.member(1), world.member(2)
    world.vouch(alice, bob)  # a member vouches
    step = membership_status_step(interval=0)
    assert step(world.rt, 0) == {}  # every credential valid: nothing changes
    assert world.row(alice).revoked_at is None

    world.set_status(alice, "revoke")
    assert step(world.rt, 0) == {"memberships_revoked": 1}

    row = world.row(alice)
    assert row.revoked_at is not None
    assert world.row(bob).revoked_at is None
    assert not world.is_member(alice)
    assert world.is_member(bob)
    with pytest.raises(SenderLocked):
        world.vouch(alice, bob)
    world.vouch(bob, alice)  # the other member still vouches

    # One spine event, with the membership's credential digest and no DID.
    (event,) = world.spine("reputation.member_revoked")
    assert json.loads(event.details) == {
        "credential_sha256": alice.credential_sha256,
        "member_event_id": row.event_id,
        "status": "revoked",
    }
    assert alice.did not in event.details
    assert event.subject is not None
    assert event.subject.startswith("p1:")
    # The scorer's input: K is gone from the day of the revocation.
    (scored,) = [m for m in scoring_members([row], world.rules()) if m.did == alice.did]
    assert scored.revoked_on == row.revoked_at.date()

    # Idempotent: reruns (and the default steps' own instance) change nothing.
    assert step(world.rt, 0) == {}
    assert step(world.rt, 0) == {}
    assert world.row(alice).revoked_at == row.revoked_at
    assert len(world.spine("reputation.member_revoked")) == 1
    with transaction(world.rt.sessions) as session:
        assert not reputation_service.revoke_membership(session, world.rt, row.id, "revoked")
    assert len(world.spine("reputation.member_revoked")) == 1


def test_a_suspension_pauses_the_membership_and_a_reinstatement_resumes_it(
    world: World,
) -> None:
    alice, bob = world.member(1), world.member(2)
    step = membership_status_step(interval=0)
    world.set_status(alice, "suspend")
    assert step(world.rt, 0) == {"memberships_suspended": 1}
    paused = world.row(alice)
    assert paused.revoked_at is None
    assert paused.suspended_at is not None
    assert not world.is_member(alice)
    with pytest.raises(SenderLocked):
        world.vouch(alice, bob)
    # The scorer sees the membership end on the suspension's day while it lasts.
    (scored,) = [m for m in scoring_members([paused], world.rules()) if m.did == alice.did]
    assert scored.revoked_on == paused.suspended_at.date()
    assert not scored.active(paused.suspended_at.date())
    (event,) = world.spine("reputation.member_revoked")
    assert json.loads(event.details)["status"] == "suspended"
    assert step(world.rt, 0) == {}  # still suspended: nothing more

    world.set_status(alice, "reinstate")
    assert step(world.rt, 0) == {"memberships_reinstated": 1}
    resumed = world.row(alice)
    assert resumed.suspended_at is None
    assert resumed.revoked_at is None
    assert resumed.since == paused.since  # the same membership: tenure counts on
    assert world.is_member(alice)
    world.vouch(alice, bob)  # vouching is unlocked again
    (scored,) = [m for m in scoring_members([resumed], world.rules()) if m.did == alice.did]
    assert scored.revoked_on is None
    (reinstated,) = world.spine("reputation.member_reinstated")
    assert json.loads(reinstated.details) == {
        "credential_sha256": alice.credential_sha256,
        "member_event_id": resumed.event_id,
    }
    assert alice.did not in reinstated.details
    assert step(world.rt, 0) == {}  # idempotent
    with transaction(world.rt.sessions) as session:
        assert not reputation_service.reinstate_membership(session, world.rt, resumed.id)
    assert len(world.spine("reputation.member_reinstated")) == 1

    # Suspended again, then revoked: the revocation ends it for good.
    world.set_status(alice, "suspend")
    assert step(world.rt, 0) == {"memberships_suspended": 1}
    world.set_status(alice, "revoke")
    assert step(world.rt, 0) == {"memberships_revoked": 1}
    ended = world.row(alice)
    assert ended.revoked_at is not None
    with transaction(world.rt.sessions) as session:
        assert not reputation_service.reinstate_membership(session, world.rt, ended.id)
    assert step(world.rt, 0) == {}  # revoked memberships are not read again
    assert not world.is_member(alice)


def test_a_credential_whose_subject_was_erased_excludes_the_did(world: World) -> None:
    alice, bob = world.member(1), world.member(2)
    world.vouch(bob, alice)
    with transaction(world.rt.sessions) as session:
        token = session.scalar(
            select(CredentialRow.subject_token).where(CredentialRow.id == alice.credential_id)
        )
    assert token is not None
    erased = world.http.delete(f"/v1/identities/{token}", headers=world.admin)
    assert erased.status_code == 200, erased.text
    step = membership_status_step(interval=0)
    assert step(world.rt, 0) == {"memberships_excluded": 1}
    with transaction(world.rt.sessions) as session:
        row = session.get(ReputationExclusionRow, alice.did)
        assert row is not None
        assert row.reason == "erased"
    (event,) = world.spine("reputation.excluded")
    assert json.loads(event.details) == {"reason": "erased", "did_sha256": did_sha256(alice.did)}
    assert step(world.rt, 0) == {}  # an excluded DID's memberships are not read again
    with pytest.raises(RecipientExcluded):
        world.vouch(bob, alice)
    with pytest.raises(SenderLocked):
        world.vouch(alice, bob)


def test_an_unreadable_status_reference_is_counted_and_left_alone(world: World) -> None:
    # An issuer not on the trust list: its status list cannot be read, so nothing ends.
    alice = world.member(1, status_ref="https://elsewhere.example/status/7#3")
    bob = world.member(2, status_ref="not a reference")
    assert membership_status_step(interval=0)(world.rt, 0) == {"memberships_unchecked": 2}
    assert world.row(alice).revoked_at is None
    assert world.row(bob).revoked_at is None
    assert world.spine("reputation.member_revoked") == []


def test_a_trusted_foreign_list_that_cannot_be_fetched_is_counted_and_left_alone(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # The issuer is trusted, so its list is fetched through the verifier; the fetch fails
    # (503): the membership stays, the next pass tries again.
    fetched: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(503)

    failing = OutboundFetcher(
        transport=httpx.MockTransport(answer), resolver=lambda _host: ["93.184.216.34"]
    )
    FOREIGN_ISSUERS.set(world.rt, ForeignIssuers(failing))
    issuer = "https://issuer.other.example"
    added = world.http.post(
        "/v1/admin/trusted-issuers", json={"issuer": issuer}, headers=world.admin
    )
    assert added.status_code == 201, added.text
    alice = world.member(1, status_ref=f"{issuer}/status/1#5", issuer=issuer)
    step = membership_status_step(interval=0)
    assert step(world.rt, 0) == {"memberships_unchecked": 1}
    assert fetched
    assert fetched[0].startswith(f"{issuer}/status/1")
    assert "status not read" in caplog.text
    assert world.row(alice).revoked_at is None
    assert world.spine("reputation.member_revoked") == []


def test_the_step_is_among_the_default_steps_and_waits_its_interval(world: World) -> None:
    alice = world.member(1)
    step = membership_status_step(interval=3600)
    assert step(world.rt, 0) == {}  # the first pass runs: nothing to end
    world.set_status(alice, "revoke")
    assert step(world.rt, 0) == {}  # within the interval: no pass
    assert world.row(alice).revoked_at is None
    names = [s.__qualname__ for s in default_steps(world.rt)]
    assert "membership_status_step.<locals>.step" in names
