"""The lender client (`credit_commons.client.Lender`) against the platform, on SQLite and
PostgreSQL: its path through the API, and verification failures for a tampered Disclosure,
a revoked credential, a wrong issuer key, an untrusted issuer and receipts that do not
verify or are not this access's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.integration.consent_world import BASE, World, world  # noqa: F401 - fixture

from credit_commons.client import (
    ArtefactInvalid,
    ConsentPending,
    Lender,
    LenderKey,
    ReceiptMismatch,
    Retrieval,
    RetrievalInvalid,
)
from credit_commons.consent.models import WebhookDeliveryRow
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.formats import sd_jwt_errors
from credit_commons.formats.jws import sign_compact
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.ledger.errors import LogError
from credit_commons.ledger.note import format_vkey, split_vkey
from credit_commons.ledger.receipts import ReceiptInvalid
from credit_commons.ledger.worker import LogWorker
from credit_commons.verifier.sd_jwt_vc import CredentialRevoked, UntrustedIssuer

CLAIMS = ["/income_bracket", "/debt_ratio_bracket"]


class Sleeps:
    """A fake ``sleep`` that advances the world's clock and runs ``then`` at a given call."""

    def __init__(self, w: World, then: dict[int, Any] | None = None) -> None:
        self.world, self.then, self.calls = w, then or {}, []  # type: list[float]

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.world.clock.advance(timedelta(seconds=seconds))
        action = self.then.get(len(self.calls))
        if action is not None:
            action()


class InProcess(httpx.BaseTransport):
    """The test client's in-process transport, its answers read into plain responses (what
    a plain ``httpx.Client`` expects)."""

    def __init__(self, client: TestClient) -> None:
        self.inner = client._transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.inner.handle_request(request)
        body = answer.read()
        return httpx.Response(answer.status_code, headers=answer.headers, content=body)


def _lender(w: World, sleep: Sleeps, key_type: KeyType = KeyType.ED25519, **kw: Any) -> Lender:
    lender = Lender(
        BASE,
        key=LenderKey.generate(key_type),
        transport=InProcess(w.http),
        clock=lambda: w.clock.now().timestamp(),
        sleep=sleep,
        **kw,
    )
    made = w.http.post(
        "/v1/admin/lenders",
        json=lender.registration_request(
            "Client Bank", ["105", "loan.underwriting"], "https://lender.example/hooks"
        ),
        headers=w.admin,
    )
    assert made.status_code == 201, made.text
    lender.client_id = made.json()["client_id"]
    return lender


def _checkpoint(w: World) -> None:
    LogWorker(w.rt, steps=[]).run_once(force_checkpoint=True)


@pytest.fixture
def ready(world: World) -> Iterator[tuple[World, Lender, Retrieval]]:  # noqa: F811
    """A lender (P-256) that retrieved the borrower's credential under an approved consent."""
    opted = world.http.put(
        f"/v1/borrowers/{world.borrower}/discovery",
        json={"enabled": True},
        headers=world.as_borrower,
    )
    assert opted.status_code == 200, opted.text
    sleeps = Sleeps(world)
    log_key = world.http.get("/v1/log/key").json()["vkey"]
    with _lender(world, sleeps, KeyType.P256, log_key=log_key) as lender:
        (entry,) = lender.tiers("B")
        assert entry.credit_tier == "B"
        consent = lender.request_consent(
            borrower=entry.borrower_ref,
            template="loan_underwriting",
            purpose="loan.underwriting",
            claims=CLAIMS,
            duration=timedelta(days=7),
        )
        assert consent.status == "PENDING"
        # The borrower decides while the lender waits: after the second sleep.
        sleeps.then[2] = lambda: world.decide(consent.consent_id, "approve")
        decided = lender.wait_for_decision(consent.consent_id, first_delay=1, max_delay=4)
        assert decided.status == "ACTIVE"
        assert sleeps.calls == [1, 2]
        retrieval = lender.retrieve(consent.consent_id)
        assert sorted(retrieval.disclosed) == sorted(CLAIMS)
        _checkpoint(world)
        yield world, lender, retrieval


def test_the_client_walks_the_whole_path(ready: tuple[World, Lender, Retrieval]) -> None:
    w, lender, retrieval = ready
    verified = lender.verify(retrieval)
    assert verified.status == "valid"
    assert verified.issuer == BASE
    assert verified.claims["income_bracket"] == "5L-25L"
    assert "score_opening" not in verified.claims
    assert verified.access_event_id == retrieval.access_event_id
    assert verified.log_size > verified.leaf_index
    # The token is reused while fresh; a webhook notice of the approval verifies.
    assert lender.token() is lender.token()
    with transaction(w.rt.read_sessions) as session:
        bodies = [
            bytes(d.body)
            for d in session.scalars(
                select(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.lender_client_id == lender.client_id)
                .order_by(WebhookDeliveryRow.created_at)
            )
        ]
    notices = [lender.verify_webhook(body) for body in bodies]
    assert [n.status for n in notices] == ["PENDING", "ACTIVE"]
    assert {n.consent_id for n in notices} == {retrieval.consent_id}


def _resign(jwt: str, key: PrivateKey, **payload_changes: Any) -> str:
    header = json.loads(b64url_decode(jwt.split(".", maxsplit=1)[0]))
    payload = {**json.loads(b64url_decode(jwt.split(".")[1])), **payload_changes}
    return sign_compact({k: v for k, v in header.items() if k != "alg"}, payload, key)


def test_verification_failures(ready: tuple[World, Lender, Retrieval]) -> None:
    w, lender, retrieval = ready
    jwt, *disclosures, _ = retrieval.credential.split("~")

    def verify(credential: str, **kw: Any) -> Any:
        changed = Retrieval.from_json({**retrieval.raw, "credential": credential, **kw})
        return lender.verify(changed)

    # A tampered Disclosure: its digest is in no _sd array.
    salt, name, _value = json.loads(b64url_decode(disclosures[0]))
    tampered = b64url_encode(json.dumps([salt, name, "1Cr+"]).encode())
    with pytest.raises(sd_jwt_errors.DisclosureUnreferenced):
        verify("~".join([jwt, tampered, *disclosures[1:]]) + "~")
    # A Disclosure left out that the platform says it disclosed.
    with pytest.raises(RetrievalInvalid):
        verify("~".join([jwt, *disclosures[1:]]) + "~")
    # Signed by another key under the platform's kid: the platform's metadata key refuses it.
    with pytest.raises(sd_jwt_errors.SignatureInvalid):
        verify("~".join([_resign(jwt, PrivateKey.generate()), *disclosures]) + "~")
    # An issuer the lender does not trust, whatever it signs.
    stranger = _resign(jwt, PrivateKey.generate(), iss="https://issuer.example")
    with pytest.raises(UntrustedIssuer):
        verify("~".join([stranger, *disclosures]) + "~")
    # Revoked: the status list says so.
    revoked = w.http.post(f"/v1/credentials/{w.credential_id}/revoke", headers=w.admin)
    assert revoked.status_code == 200, revoked.text
    with pytest.raises(CredentialRevoked):
        lender.verify(retrieval)


def test_receipts_that_do_not_verify(ready: tuple[World, Lender, Retrieval]) -> None:
    w, lender, retrieval = ready
    good = lender.receipt(retrieval.access_event_id)
    lender.verify(retrieval, receipt=good)
    document = good.model_dump(mode="json", exclude_none=True)  # the receipt as served
    entry = json.loads(good.entry)
    forged_entry = json.dumps({**entry, "type": "access.denied"}, separators=(",", ":"))
    proof = good.inclusion_proof
    flipped = [proof[0][:-2] + ("A=" if proof[0][-2] != "A" else "B=")]
    for bad, error in (
        ({**document, "entry": forged_entry}, LogError),
        ({**document, "inclusion_proof": flipped + proof[1:]}, LogError),
        ({**document, "checkpoint": good.checkpoint.replace("\n\n", "\n\nx", 1)}, LogError),
        ({**document, "format": "other"}, ReceiptInvalid),
    ):
        with pytest.raises(error):
            lender.verify(retrieval, receipt=bad)
    # A wrong pinned key: the log's name, another Ed25519 key.
    name, _key_id, signature_type, public = split_vkey(str(lender.log_key))
    stranger = PrivateKey.generate().public_key.raw()
    lender.log_key = format_vkey(name, signature_type, stranger)
    with pytest.raises(LogError):
        lender.verify(retrieval, receipt=good)
    lender.log_key = format_vkey(name, signature_type, public)
    # A valid receipt of another event is not the receipt of this access.
    w.fetch(retrieval.consent_id)  # a second fetch of a one-time consent: access.denied
    _checkpoint(w)
    denied = w.last_denial().id
    with pytest.raises(ReceiptMismatch):
        lender.verify(retrieval, receipt=lender.receipt(denied))


def test_artefacts_that_do_not_verify(ready: tuple[World, Lender, Retrieval]) -> None:
    w, lender, retrieval = ready
    granted = lender.consent(retrieval.consent_id)
    assert lender.verify_artefact(granted)["consentId"] == granted.consent_id
    assert granted.artefact is not None
    other = w.consent()  # another consent (of Lender One), granted too
    other_artefact = w.http.get(f"/v1/consents/{other}", headers=w.token()).json()["artefact"]
    header, payload, signature = granted.artefact.split(".")
    for artefact in (
        other_artefact,  # genuine, but for another consent
        f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BA'}",
        _resign(granted.artefact, PrivateKey.generate()),
        None,
    ):
        forged = replace(granted, artefact=artefact)
        with pytest.raises(ArtefactInvalid):
            lender.verify_artefact(forged)
    # The same artefact checked by another lender is not for it.
    lender.client_id = w.other
    with pytest.raises(ArtefactInvalid, match="another lender"):
        lender.verify_artefact(granted)


def test_waiting_is_bounded(world: World) -> None:  # noqa: F811
    sleeps = Sleeps(world)
    with _lender(world, sleeps) as lender:
        consent = lender.request_consent(
            borrower=world.borrower,
            template="loan_underwriting",
            purpose="105",
            claims=["/income_bracket"],
            duration=timedelta(days=1),
        )
        with pytest.raises(ConsentPending):
            lender.wait_for_decision(consent.consent_id, timeout=30, first_delay=1, max_delay=8)
        # 1 + 2 + 4 + 8 + 8 = 23, then the 7 s left: six sleeps, 30 s in all.
        assert sleeps.calls == [1, 2, 4, 8, 8, 7]
