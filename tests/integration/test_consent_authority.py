"""Only the borrower decides a consent (issue 12 item 1), and every refused attempt is in the
borrower's access history (item 2) — over HTTP, on SQLite and PostgreSQL.

The matrix: every kind of caller × every decision × every consent state.  The borrower is an
enterprise, so that its owner is one of the callers.  Those who may decide — the enterprise
itself, its owner, a delegate named with ``manage:consents`` — change the consent as the
lifecycle allows (or get 409) and are recorded as who they are (``approval`` ``self``,
``owner``, ``delegate``).  Everyone else gets exactly the answer an unknown consent gets,
nothing of the consent changes, and an ``access.denied`` event with the borrower as subject
and the caller's pseudonym as actor is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from tests.integration.consent_world import CRC, World

from credit_commons.consent import decisions as consent_decisions
from credit_commons.consent import requests as consent_requests
from credit_commons.consent import service
from credit_commons.consent.model import ConsentRequest
from credit_commons.consent.models import ConsentRow
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.events import EventRow
from credit_commons.identity.auth import Principal, actor_of, subject_of
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.did_key import encode_did_key

STATES = ("PENDING", "ACTIVE", "PAUSED", "REJECTED", "REVOKED", "EXPIRED")
DECISIONS = ("approve", "reject", "pause", "resume", "revoke", "revoke-all")
# decision -> (states it applies to, the state it leads to)
LIFECYCLE = {
    "approve": ({"PENDING"}, "ACTIVE"),
    "reject": ({"PENDING"}, "REJECTED"),
    "pause": ({"ACTIVE"}, "PAUSED"),
    "resume": ({"PAUSED"}, "ACTIVE"),
    "revoke": ({"ACTIVE", "PAUSED"}, "REVOKED"),
    "revoke-all": ({"ACTIVE", "PAUSED"}, "REVOKED"),
}
UNKNOWN_CONSENT = "cns_" + "0" * 26
UNKNOWN_BORROWER = "idt_" + "Z" * 22


@dataclass(frozen=True)
class Caller:
    """One kind of caller: its bearer header, its event actor, and what it may do."""

    kind: str
    headers: dict[str, str]
    actor: str | None  # None: not an identity the platform can name (a lender's token)
    approval: str | None  # how its decisions are recorded; None: it may not decide


@dataclass(frozen=True)
class _Lender:
    client_id: str
    purposes: frozenset[str] = frozenset({"105"})


@dataclass
class Borrower:
    token: str
    headers: dict[str, str]
    did_key: PrivateKey
    callers: list[Caller] = field(default_factory=list)


def _identity(world: World, roles: list[str], **profile: Any) -> tuple[str, dict[str, str]]:
    made = world.http.post(
        "/v1/identities", json={"roles": roles, "profile": {"name": "P", **profile}}
    )
    assert made.status_code == 201, made.text
    body = made.json()
    return str(body["identity_token"]), {"Authorization": f"Bearer {body['access_token']}"}


def _delegate(
    world: World,
    borrower: str,
    as_borrower: dict[str, str],
    delegatee: str,
    as_delegatee: dict[str, str],
    permissions: list[str],
    *,
    kind: str = "business_owner",
    days: int = 365,
    accept: bool = True,
) -> str:
    offered = world.http.post(
        f"/v1/identities/{borrower}/delegations",
        json={
            "delegatee_token": delegatee,
            "type": kind,
            "permissions": permissions,
            "expires_in_days": days,
        },
        headers=as_borrower,
    )
    assert offered.status_code == 201, offered.text
    delegation_id = str(offered.json()["id"])
    if accept:
        accepted = world.http.post(
            f"/v1/identities/{delegatee}/delegations/{delegation_id}/accept", headers=as_delegatee
        )
        assert accepted.status_code == 200, accepted.text
    return delegation_id


def _actor(world: World, token: str) -> str:
    return actor_of(world.rt, Principal(token, "identity"))


def enterprise_world(world: World) -> Borrower:
    """An enterprise borrower (with a DID) owned by a person, and every kind of caller."""
    rt = world.rt
    owner, as_owner = _identity(world, ["business"])
    did_key = PrivateKey.generate(KeyType.ED25519)
    made = world.http.post(
        "/v1/identities",
        json={
            "kind": "enterprise",
            "owner_token": owner,
            "roles": ["business"],
            "profile": {"name": "E", "did": encode_did_key(did_key.public_key)},
        },
        headers=as_owner,  # an enterprise is registered by its owner
    )
    assert made.status_code == 201, made.text
    token = str(made.json()["identity_token"])
    headers = {"Authorization": f"Bearer {made.json()['access_token']}"}
    borrower = Borrower(token, headers, did_key)

    def add(kind: str, who: tuple[str, dict[str, str]], approval: str | None = None) -> None:
        borrower.callers.append(Caller(kind, who[1], _actor(world, who[0]), approval))

    add("borrower", (token, headers), "self")
    add("owner", (owner, as_owner), "owner")
    delegate = _identity(world, ["citizen"])
    _delegate(world, token, headers, *delegate, ["manage:consents"])
    add("delegate", delegate, "delegate")
    reader = _identity(world, ["citizen"])
    _delegate(world, token, headers, *reader, ["read:profile", "read:credentials"])
    add("delegate without manage:consents", reader)
    lapsing = _identity(world, ["citizen"])
    _delegate(world, token, headers, *lapsing, ["manage:consents"], days=1)
    add("delegate whose delegation expired", lapsing)
    revoked = _identity(world, ["citizen"])
    dlg = _delegate(world, token, headers, *revoked, ["manage:consents"])
    gone = world.http.delete(f"/v1/identities/{token}/delegations/{dlg}", headers=headers)
    assert gone.status_code == 200, gone.text
    add("delegate whose delegation was revoked", revoked)
    unaccepted = _identity(world, ["citizen"])
    _delegate(world, token, headers, *unaccepted, ["manage:consents"], accept=False)
    add("delegate who never accepted", unaccepted)
    agent = _identity(world, ["field_agent"])
    _delegate(world, token, headers, *agent, ["assist:consent"], kind="field_agent_assist")
    add("field agent (outside the assisted flow)", agent)
    add("another identity", _identity(world, ["citizen"]))
    add("an identity with the lender role", _identity(world, ["lender"]))
    borrower.callers.append(
        Caller("administrator", world.admin, actor_of(rt, Principal("admin:desk", "admin")), None)
    )
    borrower.callers.append(Caller("lender (OAuth access token)", {}, None, None))
    return borrower


def _consent_in(world: World, borrower: Borrower, state: str, lender: str) -> str:
    # A consent of ``borrower`` to ``lender`` brought to ``state`` by the borrower itself
    # (EXPIRED ones run out when the test moves the clock).
    rt = world.rt
    expiry = timedelta(hours=1) if state == "EXPIRED" else timedelta(days=7)
    body = ConsentRequest.model_validate(
        {
            "template": "loan_underwriting",
            "borrower": borrower.token,
            "purpose": "105",
            "consent_expiry": (rt.clock.now() + expiry).isoformat(),
            "scopes": [{"type": CRC, "claims": ["/income_bracket"]}],
        }
    )
    me = Principal(borrower.token, "identity")
    steps = {
        "ACTIVE": ["approve"],
        "PAUSED": ["approve", "pause"],
        "REJECTED": ["reject"],
        "REVOKED": ["approve", "revoke"],
    }.get(state, [])
    with transaction(rt.sessions) as session:
        consent_id = consent_requests.request_consent(session, rt, _Lender(lender), body).consent_id
        for action in steps:
            consent_decisions.decide(session, rt, me, consent_id, action)
    return consent_id


def _snapshot(world: World, consent_id: str) -> tuple[dict[str, Any], list[str]]:
    # Every column of the consent row, and the ids of the consent.* events about it.
    with transaction(world.rt.read_sessions) as session:
        row = session.get(ConsentRow, consent_id)
        assert row is not None
        columns = {c.key: getattr(row, c.key) for c in ConsentRow.__table__.columns}
        events = session.scalars(
            select(EventRow.id).where(
                EventRow.object == world.rt.objects.digest("consent", consent_id),
                EventRow.type.like("consent.%"),
            )
        ).all()
    return columns, list(events)


def _last_event(world: World) -> str:
    # Event ids grow with time (ULIDs from one generator): the newest is the watermark.
    with transaction(world.rt.read_sessions) as session:
        return str(session.scalar(select(func.max(EventRow.id))) or "")


def _events_since(world: World, subject: str, after: str) -> list[EventRow]:
    with transaction(world.rt.read_sessions) as session:
        rows = session.scalars(
            select(EventRow)
            .where(EventRow.subject == subject, EventRow.id > after)
            .order_by(EventRow.id)
        ).all()
        for row in rows:
            session.expunge(row)
    return list(rows)


def _headers(world: World, caller: Caller) -> dict[str, str]:
    # A lender's access token lives minutes: a fresh one for each call.
    return world.token() if caller.actor is None else caller.headers


def _call(world: World, caller: Caller, borrower: str, consent_id: str, decision: str) -> Any:
    headers = _headers(world, caller)
    if decision == "revoke-all":
        return world.http.post(
            f"/v1/borrowers/{borrower}/consents/revoke-all",
            json={"lender": consent_lender(world, consent_id)},
            headers=headers,
        )
    return world.http.post(f"/v1/borrowers/consents/{consent_id}/{decision}", headers=headers)


def consent_lender(world: World, consent_id: str) -> str:
    with transaction(world.rt.read_sessions) as session:
        row = session.get(ConsentRow, consent_id)
        assert row is not None
        return row.lender_client_id


def _without_instance(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "instance"}


def test_only_the_borrower_decides_matrix(world: World) -> None:
    rt = world.rt
    borrower = enterprise_world(world)
    subject = subject_of(rt, borrower.token)
    cases: list[tuple[Caller, str, str, str]] = []
    for c, caller in enumerate(borrower.callers):
        for d, decision in enumerate(DECISIONS):
            for s, state in enumerate(STATES):
                # Each case has its own lender, so revoke-all touches only its consent.
                lender = f"lnd_case{c:02d}{d}{s}{'x' * 16}"
                cases.append((caller, decision, state, _consent_in(world, borrower, state, lender)))
    # The clock moves on: one-hour requests expire, one-day delegations lapse.
    world.clock.advance(timedelta(days=2))
    with transaction(rt.sessions) as session:
        assert service.expire_due(session, rt).expired == len(borrower.callers) * len(DECISIONS)
    for caller, decision, state, consent_id in cases:
        label = f"{caller.kind} / {decision} / {state}"
        before, before_events = _snapshot(world, consent_id)
        assert before["status"] == state, label
        seen = _last_event(world)
        response = _call(world, caller, borrower.token, consent_id, decision)
        after, after_events = _snapshot(world, consent_id)
        new = _events_since(world, subject, seen)
        if caller.approval is None:
            # Refused: the answer an unknown consent (or borrower) gets, nothing changed.
            unknown = (
                world.http.post(
                    f"/v1/borrowers/{UNKNOWN_BORROWER}/consents/revoke-all",
                    json={"lender": "lnd_xxxxxxxxxx"},
                    headers=_headers(world, caller),
                )
                if decision == "revoke-all"
                else world.http.post(
                    f"/v1/borrowers/consents/{UNKNOWN_CONSENT}/{decision}",
                    headers=_headers(world, caller),
                )
            )
            assert response.status_code == unknown.status_code, label
            assert response.status_code in (401, 404), label
            assert _without_instance(response.json()) == _without_instance(unknown.json()), label
            assert after == before, label
            assert after_events == before_events, label
            if caller.actor is None:
                assert new == [], label  # not authenticated at all: nothing to attribute
                continue
            # The attempt is in the borrower's history (item 2), and only the attempt.
            assert [e.type for e in new] == ["access.denied"], label
            details = json.loads(new[0].details)
            assert details == {
                "operation": f"consent.{decision.replace('-', '_')}",
                "reason": "consent.not_authorised",
            }, label
            assert new[0].actor == caller.actor, label
            continue
        allowed, target = LIFECYCLE[decision]
        if state not in allowed:
            if decision == "revoke-all":
                assert response.status_code == 200, label
                assert response.json() == {"revoked": [], "receipts": {}}, label
            else:
                assert response.status_code == 409, label
                assert response.json()["code"] == "consent.state_invalid", label
            assert after == before, label
            assert after_events == before_events, label
            continue
        assert response.status_code == 200, f"{label}: {response.text}"
        assert after["status"] == target, label
        changes = [e for e in new if e.type.startswith("consent.")]
        assert len(changes) == 1, label
        assert changes[0].actor == caller.actor, label
        assert json.loads(changes[0].details)["approval"] == caller.approval, label
        if decision == "approve":
            assert after["approval"] == caller.approval, label
            assert response.json()["assisted"] is False, label  # a facilitator, not an agent
            artefact = json.loads(b64url_decode(str(after["artefact"]).split(".")[1]))
            assert artefact["approval"] == caller.approval, label
            facilitator = None if caller.approval == "self" else caller.actor
            assert artefact["facilitator"] == facilitator, label
            assert after["facilitator"] == facilitator, label


def test_an_administrator_cannot_approve(world: World) -> None:
    # The reproduction: an admin cct_ token approving a pending consent.
    pending = world.consent(approve=False)
    before = _snapshot(world, pending)
    response = world.http.post(f"/v1/borrowers/consents/{pending}/approve", headers=world.admin)
    unknown = world.http.post(
        f"/v1/borrowers/consents/{UNKNOWN_CONSENT}/approve", headers=world.admin
    )
    assert response.status_code == 404
    assert _without_instance(response.json()) == _without_instance(unknown.json())
    assert _snapshot(world, pending) == before
    refused = world.fetch(pending)
    assert refused.status_code == 403
    event = world.last_denial()
    assert json.loads(event.details) == {
        "operation": "credentials.read",
        "reason": "consent.not_active",
    }
    assert event.subject == subject_of(world.rt, world.borrower)


def _every_state(world: World, borrower: Borrower, lender: str) -> dict[str, str]:
    # One consent of ``borrower`` in each state (the clock moves two hours for EXPIRED).
    made = {state: _consent_in(world, borrower, state, lender) for state in STATES}
    world.clock.advance(timedelta(hours=2))
    with transaction(world.rt.sessions) as session:
        assert service.expire_due(session, world.rt).expired == 1
    return made


def test_did_signature_decides_only_approval(world: World) -> None:
    borrower = enterprise_world(world)
    subject = subject_of(world.rt, borrower.token)
    for state, consent_id in _every_state(world, borrower, "lnd_didcase" + "x" * 16).items():
        seen = _last_event(world)
        before = _snapshot(world, consent_id)
        # A signature by another key is refused like an unknown id, and the attempt is
        # recorded (the caller is unidentified).
        stranger = PrivateKey.generate(KeyType.ED25519)
        forged = b64url_encode(stranger.sign(consent_decisions.approval_message(consent_id)))
        refused = world.http.post(
            f"/v1/consents/{consent_id}/signed-approval", json={"signature": forged}
        )
        unknown = world.http.post(
            f"/v1/consents/{UNKNOWN_CONSENT}/signed-approval", json={"signature": forged}
        )
        assert refused.status_code == unknown.status_code == 404, state
        assert _without_instance(refused.json()) == _without_instance(unknown.json()), state
        assert _snapshot(world, consent_id) == before, state
        new = _events_since(world, subject, seen)
        assert [json.loads(e.details) for e in new] == [
            {"operation": "consent.approve", "reason": "consent.signature_invalid"}
        ], state
        signed = b64url_encode(
            borrower.did_key.sign(consent_decisions.approval_message(consent_id))
        )
        done = world.http.post(
            f"/v1/consents/{consent_id}/signed-approval", json={"signature": signed}
        )
        if state == "PENDING":
            assert done.status_code == 200, done.text
            assert done.json()["approval"] == "did"
            assert done.json()["status"] == "ACTIVE"
        else:
            assert done.status_code == 409, state
            assert _snapshot(world, consent_id) == before, state


def test_assisted_flow_decides_only_pending_approval(world: World) -> None:
    from credit_commons.consent import notify  # noqa: PLC0415

    borrower = enterprise_world(world)
    agent = next(c for c in borrower.callers if c.kind.startswith("field agent"))
    subject = subject_of(world.rt, borrower.token)
    consents = _every_state(world, borrower, "lnd_agentcase" + "x" * 16)
    for state, consent_id in consents.items():
        if state == "PENDING":
            continue
        before = _snapshot(world, consent_id)
        sent = world.http.post(f"/v1/consents/{consent_id}/assist", headers=agent.headers)
        unknown = world.http.post(f"/v1/consents/{UNKNOWN_CONSENT}/assist", headers=agent.headers)
        assert sent.status_code == unknown.status_code == 404, state
        assert _snapshot(world, consent_id) == before, state
    consent_id = consents["PENDING"]
    sent = world.http.post(f"/v1/consents/{consent_id}/assist", headers=agent.headers)
    assert sent.status_code == 200, sent.text
    code = notify.read_codes(world.rt, borrower.token)[-1].code
    # A wrong code is refused and recorded in the borrower's history (item 2).
    seen = _last_event(world)
    wrong = "000000" if code != "000000" else "111111"
    missed = world.http.post(
        f"/v1/consents/{consent_id}/assist/confirm", json={"code": wrong}, headers=agent.headers
    )
    assert missed.status_code == 200
    assert missed.json()["accepted"] is False
    new = _events_since(world, subject, seen)
    assert [(e.type, json.loads(e.details), e.actor) for e in new] == [
        (
            "access.denied",
            {"operation": "consent.assist_confirm", "reason": "consent.otp_invalid"},
            agent.actor,
        )
    ]
    # Someone who is not the borrower's agent cannot even try a code.
    stranger = next(c for c in borrower.callers if c.kind == "another identity")
    seen = new[-1].id
    tried = world.http.post(
        f"/v1/consents/{consent_id}/assist/confirm", json={"code": code}, headers=stranger.headers
    )
    assert tried.status_code == 404
    new = _events_since(world, subject, seen)
    assert [(json.loads(e.details)["reason"], e.actor) for e in new] == [
        ("consent.not_authorised", stranger.actor)
    ]
    # Five wrong codes void the code: a sixth try (even the right code) is a 409 for the
    # agent, recorded too.
    for _ in range(4):
        confirm = f"/v1/consents/{consent_id}/assist/confirm"
        world.http.post(confirm, json={"code": wrong}, headers=agent.headers)
    seen = _last_event(world)
    voided = world.http.post(
        f"/v1/consents/{consent_id}/assist/confirm", json={"code": code}, headers=agent.headers
    )
    assert voided.status_code == 409
    assert voided.json()["code"] == "consent.state_invalid"
    new = _events_since(world, subject, seen)
    assert [json.loads(e.details)["reason"] for e in new] == ["consent.otp_exhausted"]
    assert _snapshot(world, consent_id)[0]["status"] == "PENDING"
    # A new code, read out right, grants it as assisted.
    assert world.http.post(f"/v1/consents/{consent_id}/assist", headers=agent.headers).is_success
    code = notify.read_codes(world.rt, borrower.token)[-1].code
    done = world.http.post(
        f"/v1/consents/{consent_id}/assist/confirm", json={"code": code}, headers=agent.headers
    )
    assert done.status_code == 200, done.text
    assert done.json()["approval"] == "assisted"
    assert done.json()["accepted"] is True
    assert done.json()["assisted"] is True
