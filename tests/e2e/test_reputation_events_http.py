"""Reputation events over HTTP through the app, on SQLite and PostgreSQL: a member joins with
a key-bound KYC credential, vouches within budget (problem+json codes beyond it), and the
blob of each accepted event is served by its CID byte for byte; an unknown CID and a
string that is no CID answer the same 404."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import GENEROUS_RATE_LIMITS, make_settings, migrate
from tests.factories import kyc_claims, shg_claims

from credit_commons import reputation
from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.encoding import canonical_json
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.gateway.app import create_app
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer.sd_jwt import present
from credit_commons.keys import KeyType, PrivateKey, encode_did_key, public_key_to_jwk
from credit_commons.ledger.receipts import PendingReceipt, verify_any_receipt
from credit_commons.reputation import blob_cid, new_nonce, register_rule_set, sign_event
from credit_commons.runtime import Runtime

BASE = "http://127.0.0.1:8000"
KYC_VCT = "https://credit-commons.dev/vct/kyc/v1"  # the catalogue's KycCredential
SHG_VCT = "https://credit-commons.dev/vct/shg-membership/v1"


class World:
    """The app over one runtime, an administrator, and members' keys."""

    def __init__(self, rt: Runtime, http: TestClient, clock: FixedClock) -> None:
        self.rt, self.http, self.clock = rt, http, clock
        with transaction(rt.sessions) as session:
            admin, _ = issue_admin_token(session, rt, "reputation")
        self.admin = {"Authorization": f"Bearer {admin}"}

    def credential(self, key: PrivateKey, type_name: str = "KycCredential") -> str:
        """A credential of the built-in ``type_name`` bound to ``key``."""
        person = self.http.post("/v1/identities", json={"profile": {"name": "Member"}}).json()
        token = person["identity_token"]
        claims = kyc_claims(token) if type_name == "KycCredential" else shg_claims(token)
        body = {
            "type": type_name,
            "subject": token,
            "claims": claims,
            "holder_jwk": public_key_to_jwk(key.public_key),
        }
        issued = self.http.post("/v1/credentials", json=body, headers=self.admin)
        assert issued.status_code == 201, issued.text
        return str(issued.json()["credential"])

    def presentation(self, key: PrivateKey, credential: str, *, nonce: str, aud: str = BASE) -> str:
        return present(
            SdJwt.parse(credential),
            disclose=set(),
            holder_signer=key,
            audience=aud,
            nonce=nonce,
            iat=int(self.clock.now().timestamp()),
        )

    def join(self, key: PrivateKey, credential: str, **kw: Any) -> Any:
        did = encode_did_key(key.public_key)
        shown = self.presentation(key, credential, nonce=kw.pop("nonce", did), **kw)
        return self.http.post(
            "/v1/reputation/members", json={"did": kw.pop("did", did), "presentation": shown}
        )

    def event(self, key: PrivateKey, to: PrivateKey, n: int, **kw: Any) -> dict[str, Any]:
        now = self.clock.now()
        values: dict[str, Any] = {
            "type": "vouch",
            "to": encode_did_key(to.public_key),
            "ctx": "shg:savings",
            "epoch": now.strftime("%Y-%m"),
            "nonce": new_nonce(n.to_bytes(12, "big")),
            "issued_at": now,
        }
        values.update(kw)
        return sign_event(key, **values).document()


@pytest.fixture
def world(tmp_path: Path, backend_url: str) -> Iterator[World]:
    # Mid-month, so that a whole test stays in one epoch; near the real time, for KB-JWTs.
    now = datetime.now(UTC).replace(day=15, hour=12, minute=0, second=0, microsecond=0)
    clock = FixedClock(now)
    settings = make_settings(
        tmp_path, database_url=backend_url, public_url=BASE, rate_limits=GENEROUS_RATE_LIMITS
    )
    rt = Runtime.build(settings, clock=clock)
    migrate(rt.engine)
    document = json.loads((Path(reputation.__file__).parent / "dev_rules.json").read_text())
    document["validFrom"] = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    document["kyc"] = {"credentialTypes": [KYC_VCT], "trustedIssuers": [BASE]}
    with TestClient(create_app(settings, runtime=rt), base_url=BASE) as http:
        world = World(rt, http, clock)
        with transaction(rt.sessions) as session:
            register_rule_set(session, rt, document, actor=rt.operator_actor("rules"), dev=True)
        yield world


def _key(n: int) -> PrivateKey:
    return PrivateKey.from_raw(KeyType.ED25519, bytes([n]) * 32)


def _problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


def test_join_vouch_budget_replay_and_blobs(world: World) -> None:
    alice, bob = _key(1), _key(2)
    http = world.http
    # Locked until a member.
    first = world.event(alice, bob, 1)
    _problem(http.post("/v1/events", json=first), 403, "reputation.sender_locked")

    kyc = world.credential(alice)
    joined = world.join(alice, kyc)
    assert joined.status_code == 201, joined.text
    assert joined.json()["kyc"] is True
    assert joined.json()["did"] == encode_did_key(alice.public_key)

    accepted = []
    for n in range(1, 6):  # the rule set's five vouches per context and epoch
        response = http.post("/v1/events", json=world.event(alice, _key(10 + n), n))
        assert response.status_code == 201, response.text
        accepted.append(response.json())
    _problem(
        http.post("/v1/events", json=world.event(alice, bob, 6)), 409, "reputation.budget_exhausted"
    )
    replayed = world.event(alice, bob, 1)  # nonce 1 again
    _problem(http.post("/v1/events", json=replayed), 409, "reputation.replay")
    # A report has its own budget.
    report = http.post("/v1/events", json=world.event(alice, bob, 7, type="report"))
    assert report.status_code == 201, report.text

    receipt = accepted[0]
    assert receipt["leaf_index"] is None
    assert receipt["receipt"]["event"]["type"] == "reputation.event"
    # The pending receipt verifies under the log's key: its entry is this event's.
    vkey = http.get("/v1/log/key").json()["vkey"]
    pending = verify_any_receipt(receipt["receipt"], vkey)
    assert isinstance(pending, PendingReceipt)
    assert pending.event_checked
    blob = http.get(f"/v1/blobs/{receipt['cid']}")
    assert blob.status_code == 200
    assert blob.headers["content-type"] == "application/json"
    assert blob_cid(blob.content) == receipt["cid"]
    assert blob.content == canonical_json(world.event(alice, _key(11), 1))
    assert "immutable" in blob.headers["cache-control"]

    # An unknown CID and a string that is not one: the same 404.
    unknown = http.get(f"/v1/blobs/{blob_cid(b'nothing')}")
    not_a_cid = http.get("/v1/blobs/not-a-cid")
    _problem(unknown, 404, "reputation.blob_not_found")
    _problem(not_a_cid, 404, "reputation.blob_not_found")
    assert unknown.json()["detail"] == not_a_cid.json()["detail"]


def test_refusals_are_problem_json_with_stable_codes(world: World) -> None:
    alice, bob = _key(1), _key(2)
    http = world.http
    assert world.join(alice, world.credential(alice)).status_code == 201
    good = world.event(alice, bob, 1)
    cases: list[tuple[Any, int, str]] = [
        ({**good, "weight": 1}, 422, "reputation.event_invalid"),
        ({**good, "to": good["from"]}, 422, "reputation.event_invalid"),
        ({**good, "ctx": "general"}, 400, "reputation.signature_invalid"),
        (world.event(alice, bob, 2, ctx="unknown"), 422, "reputation.context_not_allowed"),
        (
            world.event(alice, bob, 3, issued_at=world.clock.now() + timedelta(minutes=10)),
            422,
            "reputation.epoch_window",
        ),
    ]
    for body, status, code in cases:
        _problem(http.post("/v1/events", json=body), status, code)
    padded = json.dumps(good) + " " * 2048
    _problem(
        http.post("/v1/events", content=padded, headers={"Content-Type": "application/json"}),
        413,
        "reputation.event_too_large",
    )
    duplicate = json.dumps(good)[:-1] + ', "ctx": "general"}'
    _problem(
        http.post("/v1/events", content=duplicate, headers={"Content-Type": "application/json"}),
        422,
        "reputation.event_invalid",
    )
    assert http.post("/v1/events", json=good).status_code == 201


def test_membership_needs_a_credential_bound_to_the_did(world: World) -> None:
    alice, mallory = _key(1), _key(3)
    kyc = world.credential(alice)
    # Another DID presenting Alice's credential (Mallory holds no key of it).
    shown = world.presentation(alice, kyc, nonce=encode_did_key(mallory.public_key))
    stolen = world.http.post(
        "/v1/reputation/members",
        json={"did": encode_did_key(mallory.public_key), "presentation": shown},
    )
    _problem(stolen, 403, "reputation.member_refused")
    # The nonce must be the DID and the audience this platform.
    _problem(world.join(alice, kyc, nonce="other"), 403, "reputation.member_refused")
    _problem(world.join(alice, kyc, aud="https://else.example"), 403, "reputation.member_refused")
    # A tampered presentation.
    body = {"did": encode_did_key(alice.public_key), "presentation": "x" + shown}
    _problem(world.http.post("/v1/reputation/members", json=body), 403, "reputation.member_refused")
    # Properly bound: accepted, and idempotent.
    assert world.join(alice, kyc).status_code == 201
    again = world.join(alice, kyc)
    assert again.status_code == 201
    assert again.json()["event_id"] == world.join(alice, kyc).json()["event_id"]


def test_another_credential_is_an_attestation_and_does_not_unlock(world: World) -> None:
    alice, bob = _key(1), _key(2)
    joined = world.join(alice, world.credential(alice, "ShgMembershipCredential"))
    assert joined.status_code == 201, joined.text
    assert joined.json()["kyc"] is False
    assert joined.json()["vct"] == SHG_VCT
    locked = world.http.post("/v1/events", json=world.event(alice, bob, 1))
    _problem(locked, 403, "reputation.sender_locked")
