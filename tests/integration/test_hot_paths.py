"""The precompiled fast paths (``HotQuery``, ``HotStatement`` in core/db.py) held to their
plain reference path, on SQLite and PostgreSQL (issue 15: performance code sits behind the
same service functions, each with the reference path tested against it).

One flow -- a new borrower, a credential, consents approved, paused, resumed, revoked and
refused, retrievals allowed and denied, the credential presented to the platform's OpenID4VP
verifier and its decision read (and a response overtaken by a concurrent one), the
credential revoked -- runs over HTTP on the same platform: once to warm it up, once on the
fast paths, once inside ``reference_paths()``, where every precompiled statement runs
through SQLAlchemy's own ``session.execute``.  What the services answer and the events they
record must be the same, and the flow must reach every precompiled statement the package
defines."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update
from tests.factories import readiness_claims
from tests.integration.consent_world import CRC, World

from credit_commons.consent import check as consent_check
from credit_commons.consent import retrieval
from credit_commons.consent.errors import ConsentError
from credit_commons.consent.models import ConsentRow
from credit_commons.core.db import HotQuery, HotStatement, reference_paths, transaction
from credit_commons.events import EventRow
from credit_commons.formats import oid4vp
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.issuer import CREDIT_READINESS, present
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.verifier import responses as verifier_responses
from credit_commons.verifier.models import VpTransactionRow

# Ids, tokens, signatures, digests and timestamps differ from run to run; everything else
# in an answer (statuses, codes, claim names and values, modes, flags) must not.
_VOLATILE = re.compile(r"[0-9A-Za-z_\-+/=:.~]{20,}")


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, str) and _VOLATILE.search(value):
        return "<varies>"
    return value


def _answer(response: Any) -> tuple[int, Any]:
    return response.status_code, _shape(response.json())


def _flow(world: World) -> tuple[list[tuple[str, int, Any]], list[str]]:
    """One borrower's story; returns what each step answered and the events it recorded."""
    http, now = world.http, world.clock.now()
    with transaction(world.rt.read_sessions) as session:
        before = set(session.scalars(select(EventRow.id)))
    made = http.post("/v1/identities", json={"roles": ["business"], "profile": {"name": "R"}})
    borrower = made.json()["identity_token"]
    as_borrower = {"Authorization": f"Bearer {made.json()['access_token']}"}
    holder = PrivateKey.generate(KeyType.ED25519)
    issued = http.post(
        "/v1/credentials",
        json={
            "type": CRC,
            "subject": borrower,
            "claims": readiness_claims(borrower),
            "holder_jwk": public_key_to_jwk(holder.public_key),
        },
        headers=world.admin,
    )
    steps: list[tuple[str, int, Any]] = [("identity", *_answer(made))]
    steps.append(("issue", *_answer(issued)))
    credential_id = issued.json()["credential_id"]

    def consent(**overrides: Any) -> str:
        body: dict[str, Any] = {
            "template": "loan_underwriting",
            "borrower": borrower,
            "purpose": "105",
            "consent_expiry": (now + timedelta(days=7)).isoformat(),
            "scopes": [{"type": CRC, "claims": ["/income_bracket"]}],
            **overrides,
        }
        asked = http.post("/v1/consents", json=body, headers=world.token())
        steps.append(("request", *_answer(asked)))
        return str(asked.json()["consent_id"])

    def decide(consent_id: str, action: str) -> None:
        done = http.post(f"/v1/borrowers/consents/{consent_id}/{action}", headers=as_borrower)
        steps.append((action, *_answer(done)))

    def check(label: str, expected: str) -> None:
        # The consent check by (lender, borrower), as a service call: no route uses it alone.
        with transaction(world.rt.sessions) as session:
            try:
                found = consent_check.check(
                    session,
                    lender=world.lender,
                    principal=world.rt.pseudonymizer.pseudonym("identity", borrower),
                    type_name=CRC,
                    claims=frozenset({"/income_bracket"}),
                    now=world.clock.now(),
                )
                steps.append((label, 200, found == expected))
            except ConsentError as e:
                steps.append((label, 403, type(e).__name__))

    def fetch(label: str, consent_id: str, headers: Any = None, **params: str) -> None:
        steps.append((label, *_answer(world.fetch(consent_id, headers, **params))))

    pending = consent()
    fetch("fetch pending", pending)
    live = consent()
    decide(live, "approve")
    check("check", live)
    fetch("fetch", live)
    fetch("fetch again", live)
    fetch("fetch more claims", live, claims="/income_bracket,/score_opening")
    fetch("fetch as another lender", live, world.token(world.other))
    decide(live, "pause")
    fetch("fetch paused", live)
    check("check paused", live)
    decide(live, "resume")
    fetch("fetch resumed", live)
    periodic: dict[str, Any] = {"fetch_type": "PERIODIC", "frequency": {"unit": "DAY", "value": 1}}
    monitoring = consent(template="loan_monitoring", purpose="104", **periodic)
    decide(monitoring, "approve")
    fetch("fetch periodic", monitoring)
    fetch("fetch periodic again in its window", monitoring)
    # A revocation committed between a retrieval's read and its use: the use is counted by
    # nothing, and the refusal comes from the row as it is now.
    for raced in (consent(), consent(template="loan_monitoring", purpose="104", **periodic)):
        decide(raced, "approve")
        with _revoked_after_read(world, raced):
            fetch("fetch revoked after its read", raced)
    present_to_verifier(world, issued.json()["credential"], holder, steps)
    revoked = http.post(f"/v1/credentials/{credential_id}/revoke", headers=world.admin)
    steps.append(("revoke credential", *_answer(revoked)))
    fetch("fetch revoked credential", live)
    decide(live, "revoke")
    fetch("fetch revoked consent", live)
    with transaction(world.rt.read_sessions) as session:
        events = sorted(
            row.type for row in session.scalars(select(EventRow)) if row.id not in before
        )
    return steps, events


@contextmanager
def _revoked_after_read(world: World, consent_id: str) -> Iterator[None]:
    # Retrievals revoke ``consent_id`` (a committed change of its row) right after their
    # read unit of work, before the use is counted.
    real = retrieval._read

    def read_then_revoke(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        with transaction(world.rt.sessions) as session:
            revoked = update(ConsentRow).where(ConsentRow.id == consent_id)
            session.execute(revoked.values(status="REVOKED"))
        return found

    retrieval._read = read_then_revoke  # type: ignore[assignment]
    try:
        yield
    finally:
        retrieval._read = real  # type: ignore[assignment]


def present_to_verifier(
    world: World, credential: str, holder: PrivateKey, steps: list[tuple[str, int, Any]]
) -> None:
    """The lender asks the platform's verifier for the income bracket, the borrower's wallet
    answers (the pipeline's reads: the status entry with its tombstone), the lender reads
    the decision."""
    http = world.http
    query = {
        "credentials": [
            {
                "id": "crc",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [CREDIT_READINESS.vct]},
                "claims": [{"path": ["income_bracket"]}],
            }
        ]
    }
    made = http.post(
        "/v1/verifier/requests",
        json={
            "dcql_query": query,
            "client_id_prefix": "redirect_uri",
            "response_mode": "direct_post",
            "redirect_uri": "https://lender.example/done",
        },
        headers=world.token(),
    )
    steps.append(("verifier request", *_answer(made)))
    request = oid4vp.parse_authorization_request(made.json()["request"], signed=False)
    shown = present(
        SdJwt.parse(credential),
        disclose={"/income_bracket"},
        holder_signer=holder,
        audience=request.client_id,
        nonce=request.nonce,
        iat=world.now(),
    )
    answered = http.post(
        urlsplit(request.response_uri).path,
        data={"vp_token": json.dumps({"crc": [shown]}), "state": str(request.state)},
    )
    steps.append(("verifier response", *_answer(answered)))
    code = parse_qs(urlsplit(answered.json()["redirect_uri"]).query)["response_code"][0]
    read = http.post(
        f"/v1/verifier/requests/{made.json()['id']}/decision",
        json={"response_code": code},
        headers=world.token(),
    )
    steps.append(("verifier decision", *_answer(read)))
    # A response overtaken between its checks and its decision (a concurrent response
    # consumed the challenge): it decides nothing and is recorded as a replay.
    made = http.post(
        "/v1/verifier/requests",
        json={
            "dcql_query": query,
            "client_id_prefix": "redirect_uri",
            "response_mode": "direct_post",
        },
        headers=world.token(),
    )
    request = oid4vp.parse_authorization_request(made.json()["request"], signed=False)
    shown = present(
        SdJwt.parse(credential),
        disclose={"/income_bracket"},
        holder_signer=holder,
        audience=request.client_id,
        nonce=request.nonce,
        iat=world.now(),
    )
    with _consumed_after_read(world, made.json()["id"]):
        answered = http.post(
            urlsplit(request.response_uri).path,
            data={"vp_token": json.dumps({"crc": [shown]}), "state": str(request.state)},
        )
    steps.append(("verifier response overtaken", *_answer(answered)))


@contextmanager
def _consumed_after_read(world: World, transaction_id: str) -> Iterator[None]:
    # Responses find the challenge of ``transaction_id`` consumed (a committed change of its
    # row) right after their read unit of work, before their decision is written.
    real = verifier_responses._plan

    def plan_then_consume(*args: Any, **kwargs: Any) -> Any:
        planned = real(*args, **kwargs)
        with transaction(world.rt.sessions) as session:
            consumed = update(VpTransactionRow).where(VpTransactionRow.id == transaction_id)
            session.execute(consumed.values(consumed_at=world.clock.now()))
        return planned

    verifier_responses._plan = plan_then_consume  # type: ignore[assignment]
    try:
        yield
    finally:
        verifier_responses._plan = real  # type: ignore[assignment]


def test_the_fast_paths_answer_what_the_reference_path_answers(world: World) -> None:
    _flow(world)  # first uses create the platform's signing keys (key.created events)
    fast_steps, fast_events = _flow(world)
    with reference_paths() as (defined, ran):
        reference_steps, reference_events = _flow(world)
    assert [s[:2] for s in fast_steps] == [s[:2] for s in reference_steps]
    assert fast_steps == reference_steps
    assert fast_events == reference_events
    # The flow is not a trivial one: it was allowed, refused and recorded.
    statuses = {label: status for label, status, _ in fast_steps}
    assert statuses["fetch"] == 200
    assert (statuses["verifier response"], statuses["verifier decision"]) == (200, 200)
    assert statuses["verifier response overtaken"] == 400
    assert statuses["fetch paused"] == 403
    assert (statuses["fetch periodic"], statuses["fetch periodic again in its window"]) == (
        200,
        403,
    )
    assert (statuses["check"], statuses["check paused"]) == (200, 403)
    assert statuses["fetch revoked after its read"] == 403
    assert "access.allowed" in fast_events
    assert "access.denied" in fast_events
    assert "verification.decided" in fast_events
    # ...and it reached every precompiled statement in the package (none is untested) that
    # is written for this database (a HotQuery may be for PostgreSQL only).
    backend = world.rt.engine.dialect.name
    package = [
        p
        for p in defined
        if p.defined_in.startswith("credit_commons.") and getattr(p, "dialect", "") in ("", backend)
    ]
    assert len(package) >= 10
    assert [p for p in package if p not in ran] == []


def test_reference_paths_is_one_switch_for_the_process() -> None:
    with reference_paths(), pytest.raises(RuntimeError, match="already active"):  # noqa: SIM117
        with reference_paths():
            pass
    with reference_paths() as (defined, ran):  # usable again once left
        assert ran == set()
        assert all(isinstance(p, HotQuery | HotStatement) for p in defined)
