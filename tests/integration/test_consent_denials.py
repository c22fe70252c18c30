"""The denial matrix over HTTP, on SQLite and PostgreSQL: every reason a lender is refused
is answered without detail and leaves an ``access.denied`` event whose receipt verifies."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from tests.factories import readiness_claims
from tests.integration.consent_world import BASE, CRC, World

from credit_commons.consent.history import access_history
from credit_commons.consent.models import AccessDenialCountRow
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_encode
from credit_commons.demo import client_assertion
from credit_commons.events import EventRow
from credit_commons.identity.auth import Principal, subject_of
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.ledger import service as log_service
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.receipts import verify_receipt
from credit_commons.ledger.worker import LogWorker


def _denied(world: World, response: Any, reason: str, status: int = 403) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert reason not in json.dumps(body)  # the lender learns nothing about why
    event = world.last_denial()
    assert json.loads(event.details)["reason"] == reason
    return event.id


def _counted(world: World, response: Any, reason: str, status: int = 403) -> None:
    # A refusal that named no existing consent or borrower: answered like any other, and
    # counted instead of logged (issue 12 item 7).
    assert response.status_code == status, response.text
    assert reason not in json.dumps(response.json())
    with transaction(world.rt.read_sessions) as session:
        counted = session.scalar(
            select(func.sum(AccessDenialCountRow.count)).where(
                AccessDenialCountRow.reason == reason
            )
        )
    world.counted[reason] = world.counted.get(reason, 0) + 1
    assert counted == world.counted[reason]


def test_denial_matrix(world: World) -> None:
    denials: list[str] = []
    world.counted = {}
    pending = world.consent(approve=False)
    denials.append(_denied(world, world.fetch(pending), "consent.not_active"))
    _counted(world, world.fetch("cns_" + "0" * 26), "consent.not_found")

    later = world.consent(consent_start=(world.clock.now() + timedelta(days=1)).isoformat())
    denials.append(_denied(world, world.fetch(later), "consent.not_yet_valid"))

    paused = world.consent()
    world.decide(paused, "pause")
    denials.append(_denied(world, world.fetch(paused), "consent.paused"))

    revoked = world.consent()
    world.decide(revoked, "revoke")
    denials.append(_denied(world, world.fetch(revoked), "consent.revoked"))

    live = world.consent()
    escalated = world.fetch(live, claims="/income_bracket,/score_opening")
    denials.append(_denied(world, escalated, "consent.scope_not_granted"))
    other_type = world.fetch(live, type="OtherCredential")
    denials.append(_denied(world, other_type, "consent.scope_not_granted"))
    wrong_lender = world.fetch(live, headers=world.token(world.other))
    denials.append(_denied(world, wrong_lender, "consent.not_found"))
    assert world.fetch(live).status_code == 200
    denials.append(_denied(world, world.fetch(live), "consent.use_exceeded"))

    # A tampered artefact, presented instead of the consent id.
    artefact = world.decide(world.consent(), "pause")["artefact"]
    world.decide(json.loads(_payload(artefact))["consentId"], "resume")
    head, body, signature = artefact.split(".")
    tampered = f"{head}.{_flip(body)}.{signature}"
    presented = world.http.post(
        "/v1/lender/credentials", json={"artefact": tampered}, headers=world.token()
    )
    denials.append(_denied(world, presented, "consent.artefact_invalid"))
    genuine = world.http.post(
        "/v1/lender/credentials", json={"artefact": artefact}, headers=world.token()
    )
    assert genuine.status_code == 200, genuine.text

    # Tokens: forged, expired, without the scope; a replayed client assertion.
    good = world.token()["Authorization"]
    forged = {"Authorization": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")}
    fresh = world.consent()
    _counted(world, world.fetch(fresh, headers=forged), "auth.token_invalid", 401)
    narrow = world.token(scope="consent:read")
    denials.append(_denied(world, world.fetch(fresh, headers=narrow), "auth.scope_missing"))
    expiring = world.token()
    world.clock.advance(timedelta(minutes=10))
    _counted(world, world.fetch(fresh, headers=expiring), "auth.token_expired", 401)
    assertion = client_assertion(world.lender, world.key, f"{BASE}/oauth/token", world.now())
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    assert world.http.post("/oauth/token", data=form).status_code == 200
    _counted(world, world.http.post("/oauth/token", data=form), "auth.assertion_replayed", 401)

    # The consent ran out: expired.
    short = world.consent(consent_expiry=(world.clock.now() + timedelta(hours=1)).isoformat())
    world.clock.advance(timedelta(hours=2))
    denials.append(_denied(world, world.fetch(short), "consent.expired"))

    # Every denial is in the log, provably.
    LogWorker(world.rt, steps=[]).run_once(force_checkpoint=True)
    vkey = log_identity(world.rt).vkey
    with transaction(world.rt.sessions) as session:
        receipts = [
            log_service.receipt(session, e, include_event=True).model_dump() for e in denials
        ]
    assert len(set(denials)) == len(denials) == 11
    for receipt in receipts:
        verified = verify_receipt(receipt, vkey)
        assert verified.event_checked
        assert verified.entry.type == "access.denied"

    # And the borrower sees them, with their receipts.
    history = world.http.get(
        f"/v1/borrowers/{world.borrower}/access-history", headers=world.as_borrower
    ).json()
    reasons = {e["reason"] for e in history if e["outcome"] == "denied"}
    assert {"consent.revoked", "consent.paused", "consent.use_exceeded"} <= reasons
    assert all(e["receipt"] is not None for e in history)


def _payload(token: str) -> str:
    from credit_commons.core.encoding import b64url_decode  # noqa: PLC0415

    return b64url_decode(token.split(".")[1]).decode()


def _flip(segment: str) -> str:
    # Change one character in the middle of a base64url segment.
    i = len(segment) // 2
    return segment[:i] + ("A" if segment[i] != "A" else "B") + segment[i + 1 :]


def test_periodic_consent_counts_fetches_per_window(world: World) -> None:
    monitoring = world.consent(
        template="loan_monitoring",
        purpose="loan.monitoring",
        fetch_type="PERIODIC",
        frequency={"unit": "DAY", "value": 1},
        data_life={"unit": "MONTH", "value": 6},
        consent_expiry=(world.clock.now() + timedelta(days=90)).isoformat(),
    )
    assert world.fetch(monitoring).status_code == 200
    _denied(world, world.fetch(monitoring), "consent.use_exceeded")  # same day
    world.clock.advance(timedelta(days=1))
    assert world.fetch(monitoring).status_code == 200  # the next day's window
    _denied(world, world.fetch(monitoring), "consent.use_exceeded")
    world.decide(monitoring, "revoke")
    _denied(world, world.fetch(monitoring), "consent.revoked")


def _borrower(world: World, *, credential: bool) -> tuple[str, dict[str, str]]:
    # Another borrower, with or without a Credit Readiness Credential.
    made = world.http.post("/v1/identities", json={"profile": {"name": "N"}}).json()
    token = str(made["identity_token"])
    if credential:
        holder = PrivateKey.generate(KeyType.ED25519)
        issued = world.http.post(
            "/v1/credentials",
            json={
                "type": CRC,
                "subject": token,
                "claims": readiness_claims(token),
                "holder_jwk": public_key_to_jwk(holder.public_key),
            },
            headers=world.admin,
        )
        assert issued.status_code == 201, issued.text
    return token, {"Authorization": f"Bearer {made['access_token']}"}


def _granted(world: World, borrower: str, headers: dict[str, str], **overrides: Any) -> str:
    consent_id = world.consent(approve=False, borrower=borrower, **overrides)
    done = world.http.post(f"/v1/borrowers/consents/{consent_id}/approve", headers=headers)
    assert done.status_code == 200, done.text
    return consent_id


def test_a_credential_that_cannot_be_shared_is_the_reason(world: World) -> None:
    # The consent grants the access; the borrower's credential of the scoped type is what
    # is missing — and the log says which way (issue 12 item 3), the lender still sees
    # only "not permitted".
    status_of = f"/v1/credentials/{world.credential_id}"
    assert world.http.post(f"{status_of}/suspend", headers=world.admin).status_code == 200
    _denied(world, world.fetch(world.consent()), "credential.suspended")
    assert world.http.post(f"{status_of}/reinstate", headers=world.admin).status_code == 200
    assert world.fetch(world.consent()).status_code == 200
    assert world.http.post(f"{status_of}/revoke", headers=world.admin).status_code == 200
    _denied(world, world.fetch(world.consent()), "credential.revoked")

    never, as_never = _borrower(world, credential=False)
    _denied(world, world.fetch(_granted(world, never, as_never)), "credential.not_issued")

    lapsing, as_lapsing = _borrower(world, credential=True)
    monitoring = _granted(
        world,
        lapsing,
        as_lapsing,
        template="loan_monitoring",
        purpose="loan.monitoring",
        fetch_type="PERIODIC",
        frequency={"unit": "DAY", "value": 1},
        data_life={"unit": "MONTH", "value": 6},
        consent_expiry=(world.clock.now() + timedelta(days=365)).isoformat(),
    )
    assert world.fetch(monitoring).status_code == 200
    world.clock.advance(timedelta(days=181))  # past the credential's 180 days
    _denied(world, world.fetch(monitoring), "credential.expired")
    # Both are in the borrower's history, the refusal with its reason (read by an operator:
    # the borrower's own session token has expired meanwhile).
    with transaction(world.rt.read_sessions) as session:
        history = access_history(session, world.rt, Principal("admin:t", "admin"), lapsing)
    assert [e.reason for e in history] == ["credential.expired", None]


def _with_payload(artefact: str, **changes: Any) -> str:
    # The artefact with its payload changed and its signature kept (so it no longer verifies).
    head, _, signature = artefact.split(".")
    payload = {**json.loads(_payload(artefact)), **changes}
    return f"{head}.{b64url_encode(json.dumps(payload).encode())}.{signature}"


def test_forged_artefacts_naming_a_consent_are_in_the_borrowers_history(world: World) -> None:
    # Issue 12 item 2: an artefact that does not verify but names one of the borrower's
    # consents is an attempt on their data — recorded with them as subject, shown in their
    # history; the lender's answer is the same as for any refusal.
    granted = world.consent()
    artefact = world.decide(world.consent(), "pause")["artefact"]
    forged_key = PrivateKey.generate(KeyType.ED25519)
    head, body, _ = artefact.split(".")
    attempts = {
        # Re-pointed: the genuine artefact of one consent, consentId changed to another.
        "re-pointed": _with_payload(artefact, consentId=granted),
        # Forged: signed by someone else's key.
        "forged": f"{head}.{body}." + b64url_encode(forged_key.sign(f"{head}.{body}".encode())),
    }
    named = json.loads(_payload(artefact))["consentId"]
    responses = [
        world.http.post("/v1/lender/credentials", json={"artefact": a}, headers=world.token())
        for a in attempts.values()
    ]
    for response in responses:
        assert response.status_code == 403
        assert response.json()["detail"] == "not permitted"
    with transaction(world.rt.read_sessions) as session:
        events = session.scalars(
            select(EventRow)
            .where(EventRow.type == "access.denied")
            .order_by(EventRow.id.desc())
            .limit(2)
        ).all()
        subjects = [e.subject for e in events]
        objects = [e.object for e in events]
    borrower = subject_of(world.rt, world.borrower)
    assert subjects == [borrower, borrower]
    assert objects == [
        world.rt.objects.digest("consent", named),
        world.rt.objects.digest("consent", granted),
    ]
    history = world.http.get(
        f"/v1/borrowers/{world.borrower}/access-history", headers=world.as_borrower
    ).json()
    shown = [(e["consent_id"], e["reason"], e["actor_kind"]) for e in history[:2]]
    assert shown == [
        (named, "consent.artefact_invalid", "lender"),
        (granted, "consent.artefact_invalid", "lender"),
    ]
