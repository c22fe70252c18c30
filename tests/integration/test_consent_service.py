"""Consent use cases through the service layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from tests.factories import kyc_claims, readiness_claims

from credit_commons.consent import artefacts, decisions, notify, retrieval, service
from credit_commons.consent import assisted as consent_assisted
from credit_commons.consent import check as consent_check
from credit_commons.consent import requests as consent_requests
from credit_commons.consent.access import Denied
from credit_commons.consent.errors import ConsentStateInvalid
from credit_commons.consent.model import ConsentRequest
from credit_commons.consent.models import ConsentRow
from credit_commons.consent.schemas import ConsentDecision, RetrievedCredential
from credit_commons.core.db import transaction
from credit_commons.core.errors import NotFoundError
from credit_commons.formats.jws import JwsInvalid, verify_compact
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.identity import delegations
from credit_commons.identity import service as identity_service
from credit_commons.identity.auth import Principal
from credit_commons.identity.schemas import DelegationCreate, IdentityCreate
from credit_commons.issuer import credentials
from credit_commons.issuer.catalogue import CREDIT_READINESS, KYC
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.privacy.erasure import erase_subject
from credit_commons.runtime import Runtime

ADMIN = Principal("admin:test", "admin")


@dataclass(frozen=True)
class FakeLender:
    client_id: str
    purposes: frozenset[str] = frozenset({"105", "104", "loan.underwriting", "loan.monitoring"})


LENDER = FakeLender("lnd_" + "a" * 22)
OTHER = FakeLender("lnd_" + "b" * 22)


def _identity(rt: Runtime, roles: list[str]) -> str:
    with transaction(rt.sessions) as session:
        body = IdentityCreate.model_validate({"roles": roles, "profile": {"name": "X"}})
        return str(identity_service.create_identity(session, rt, body).identity_token)


def _borrower(rt: Runtime) -> str:
    token = _identity(rt, ["business"])
    _issue(rt, token, CREDIT_READINESS.name, readiness_claims(token))
    return token


def _issue(rt: Runtime, token: str, type_name: str, claims: dict[str, object]) -> None:
    # A credential of ``type_name`` issued to ``token``, bound to a fresh holder key.
    holder = PrivateKey.generate(KeyType.ED25519)
    with transaction(rt.sessions) as session:
        credentials.issue_credential(
            session,
            rt,
            ADMIN,
            type_name=type_name,
            subject_token=token,
            claims=claims,
            holder_jwk=public_key_to_jwk(holder.public_key),
        )


def _delegate_assist(rt: Runtime, token: str, agent: str) -> None:
    """A live ``field_agent_assist`` delegation from ``token`` to ``agent``."""
    with transaction(rt.sessions) as session:
        made = delegations.create_delegation(
            session,
            rt,
            Principal(token, "identity"),
            token,
            DelegationCreate.model_validate(
                {
                    "delegatee_token": agent,
                    "type": "field_agent_assist",
                    "permissions": ["assist:consent"],
                }
            ),
        )
        delegations.accept_delegation(session, rt, Principal(agent, "identity"), made.id)


def _request(rt: Runtime, token: str, lender: FakeLender = LENDER, **overrides: Any) -> str:
    body: dict[str, Any] = {
        "template": "loan_underwriting",
        "borrower": token,
        "purpose": "105",
        "consent_expiry": (rt.clock.now() + timedelta(days=7)).isoformat(),
        "scopes": [{"type": CREDIT_READINESS.name, "claims": ["/income_bracket"]}],
    }
    body.update(overrides)
    with transaction(rt.sessions) as session:
        made = consent_requests.request_consent(
            session, rt, lender, ConsentRequest.model_validate(body)
        )
    return made.consent_id


def _decide(rt: Runtime, token: str, consent_id: str, action: str) -> ConsentDecision:
    with transaction(rt.sessions) as session:
        return decisions.decide(session, rt, Principal(token, "identity"), consent_id, action)


def _retrieve(
    rt: Runtime, consent_id: str, lender: FakeLender = LENDER, **kw: Any
) -> RetrievedCredential:
    return retrieval.retrieve(rt, lender, consent_id, **kw)


def _denied_reason(rt: Runtime, consent_id: str, lender: FakeLender = LENDER, **kw: Any) -> str:
    with pytest.raises(Denied) as e:
        _retrieve(rt, consent_id, lender, **kw)
    assert str(e.value) == "not permitted"
    return e.value.reason


def test_request_approve_retrieve_revoke(runtime: Runtime) -> None:
    token = _borrower(runtime)
    consent_id = _request(runtime, token)
    assert _denied_reason(runtime, consent_id) == "consent.not_active"  # still pending
    granted = _decide(runtime, token, consent_id, "approve")
    assert granted.status == "ACTIVE"
    # The artefact is signed by the consent key and says what was agreed.
    with transaction(runtime.sessions) as session:
        keys = artefacts.consent_key_versions(session, runtime)
    payload = verify_compact(
        granted.artefact, keys[0].public_key, typ="consent+jwt", algs=ACCEPTED_ALGS
    )
    detail = payload["ConsentDetail"]
    assert detail["DataConsumer"]["id"] == LENDER.client_id
    assert detail["Customer"]["id"].startswith("p1:")
    assert token not in granted.artefact
    assert detail["scopes"] == [{"type": CREDIT_READINESS.name, "claims": ["/income_bracket"]}]
    head, body, signature = granted.artefact.split(".")
    tampered = f"{head}.{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{signature}"
    with pytest.raises(JwsInvalid):
        verify_compact(tampered, keys[0].public_key, typ="consent+jwt", algs=ACCEPTED_ALGS)

    got = _retrieve(runtime, consent_id)
    shared = SdJwt.parse(got.credential)
    assert [d.name for d in shared.disclosures] == ["income_bracket"]  # only in scope
    assert got.disclosed == ["/income_bracket"]
    assert got.mode == "VIEW"
    # One-time: the second fetch is refused.
    assert _denied_reason(runtime, consent_id) == "consent.use_exceeded"
    _decide(runtime, token, consent_id, "revoke")
    assert _denied_reason(runtime, consent_id) == "consent.revoked"
    with pytest.raises(ConsentStateInvalid):
        _decide(runtime, token, consent_id, "resume")


def test_scope_escalation_wrong_lender_pause(runtime: Runtime) -> None:
    token = _borrower(runtime)
    consent_id = _request(runtime, token)
    _decide(runtime, token, consent_id, "approve")
    reason = _denied_reason(runtime, consent_id, claims=["/income_bracket", "/score_opening"])
    assert reason == "consent.scope_not_granted"
    assert _denied_reason(runtime, consent_id, OTHER) == "consent.not_found"
    _decide(runtime, token, consent_id, "pause")
    assert _denied_reason(runtime, consent_id) == "consent.paused"
    _decide(runtime, token, consent_id, "resume")
    assert _retrieve(runtime, consent_id).consent_id == consent_id


def test_only_the_borrower_decides(runtime: Runtime) -> None:
    token = _borrower(runtime)
    stranger = _identity(runtime, ["citizen"])
    consent_id = _request(runtime, token)
    with pytest.raises(NotFoundError):
        _decide(runtime, stranger, consent_id, "approve")
    with pytest.raises(NotFoundError), transaction(runtime.sessions) as session:
        consent_requests.get_for_lender(session, runtime, OTHER, consent_id)


def test_assisted_consent_with_a_one_time_code(runtime: Runtime) -> None:
    token = _borrower(runtime)
    agent = _identity(runtime, ["field_agent"])
    consent_id = _request(runtime, token)
    agent_principal = Principal(agent, "identity")
    with pytest.raises(NotFoundError), transaction(runtime.sessions) as session:
        consent_assisted.assist(session, runtime, agent_principal, consent_id)  # no delegation yet
    _delegate_assist(runtime, token, agent)
    with transaction(runtime.sessions) as session:
        sent = consent_assisted.assist(session, runtime, agent_principal, consent_id)
    assert sent.code_sent is True
    code = notify.read_codes(runtime, token)[-1].code
    wrong = "000000" if code != "000000" else "111111"
    with transaction(runtime.sessions) as session:
        assert (
            consent_assisted.confirm_assisted(
                session, runtime, agent_principal, consent_id, wrong
            ).accepted
            is False
        )
    with transaction(runtime.sessions) as session:
        done = consent_assisted.confirm_assisted(
            session, runtime, agent_principal, consent_id, code
        )
    assert done.accepted is True
    assert done.status == "ACTIVE"
    assert done.approval == "assisted"
    assert done.assisted is True


def test_revoke_all_and_expiry(runtime: Runtime) -> None:
    token = _borrower(runtime)
    first, second = _request(runtime, token), _request(runtime, token)
    other = _request(runtime, token, OTHER)
    for consent_id in (first, second, other):
        _decide(runtime, token, consent_id, "approve")
    with transaction(runtime.sessions) as session:
        done = decisions.revoke_all(
            session, runtime, Principal(token, "identity"), token, LENDER.client_id
        )
    assert sorted(done.revoked) == sorted([first, second])
    assert _retrieve(runtime, other, OTHER).consent_id == other
    # A request left pending past its expiry expires.
    late = _request(
        runtime, token, consent_expiry=(runtime.clock.now() + timedelta(seconds=2)).isoformat()
    )
    time.sleep(2.1)
    with transaction(runtime.sessions) as session:
        assert service.expire_due(session, runtime).expired >= 1
        row = session.get(ConsentRow, late)
        assert row is not None
        assert row.status == "EXPIRED"


def test_no_retrieval_starting_after_revocation_commits_succeeds(runtime: Runtime) -> None:
    # Twenty one-time consents; readers fetch them over 0.6 s while revoke-all commits.
    token = _borrower(runtime)
    ids = [_request(runtime, token) for _ in range(20)]
    for consent_id in ids:
        _decide(runtime, token, consent_id, "approve")
    committed: list[float] = []
    results: list[tuple[float, bool]] = []
    lock = threading.Lock()
    start = threading.Barrier(len(ids) + 1)

    def reader(consent_id: str, delay: float) -> None:
        start.wait()
        time.sleep(delay)
        began = time.monotonic()
        try:
            _retrieve(runtime, consent_id)
            ok = True
        except Denied:
            ok = False
        with lock:
            results.append((began, ok))

    def revoker() -> None:
        start.wait()
        time.sleep(0.1)
        with transaction(runtime.sessions) as session:
            decisions.revoke_all(
                session, runtime, Principal(token, "identity"), token, LENDER.client_id
            )
        committed.append(time.monotonic())

    threads = [threading.Thread(target=reader, args=(c, 0.03 * i)) for i, c in enumerate(ids)]
    threads.append(threading.Thread(target=revoker))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert committed
    assert len(results) == len(ids)
    assert any(ok for _, ok in results)
    assert any(not ok for _, ok in results)
    assert all(began < committed[0] for began, ok in results if ok)


def test_the_check_finds_the_granting_consent_or_the_most_telling_reason(runtime: Runtime) -> None:
    from credit_commons.consent.errors import ConsentNotFound, ConsentPaused  # noqa: PLC0415
    from credit_commons.identity.auth import subject_of  # noqa: PLC0415

    token = _borrower(runtime)
    pseudonym = subject_of(runtime, token)
    kwargs: dict[str, Any] = {
        "lender": LENDER.client_id,
        "principal": pseudonym,
        "type_name": CREDIT_READINESS.name,
        "claims": frozenset({"/income_bracket"}),
        "now": runtime.clock.now(),
    }
    with transaction(runtime.sessions) as session, pytest.raises(ConsentNotFound):
        consent_check.check(session, **kwargs)
    paused = _request(runtime, token)
    _decide(runtime, token, paused, "approve")
    _decide(runtime, token, paused, "pause")
    kwargs["now"] = runtime.clock.now()
    with transaction(runtime.sessions) as session, pytest.raises(ConsentPaused):
        consent_check.check(session, **kwargs)
    live = _request(runtime, token)
    _decide(runtime, token, live, "approve")
    kwargs["now"] = runtime.clock.now()
    with transaction(runtime.sessions) as session:
        assert consent_check.check(session, **kwargs) == live
        assert consent_check.check(session, **{**kwargs, "claims": frozenset()}) == live
    with transaction(runtime.sessions) as session, pytest.raises(ConsentNotFound):
        consent_check.check(session, **{**kwargs, "lender": OTHER.client_id})


def test_erasure_deletes_the_subjects_consents(runtime: Runtime) -> None:
    token = _borrower(runtime)
    consent_id = _request(runtime, token)
    _decide(runtime, token, consent_id, "approve")
    with transaction(runtime.sessions) as session:
        done = erase_subject(session, runtime, ADMIN, token)
    assert done.consents_deleted == 1
    with transaction(runtime.sessions) as session:
        assert session.get(ConsentRow, consent_id) is None
    with pytest.raises(NotFoundError), transaction(runtime.sessions) as session:
        consent_requests.get_for_lender(session, runtime, LENDER, consent_id)
    assert _denied_reason(runtime, consent_id) == "consent.not_found"


def test_a_granted_claim_the_credential_lacks_is_simply_not_disclosed(runtime: Runtime) -> None:
    # The readiness claims of the factory carry no Udyam pseudonym: granting it is allowed
    # (it is a disclosable path of the type), and retrieval shares what exists.
    token = _borrower(runtime)
    consent_id = _request(
        runtime,
        token,
        scopes=[
            {
                "type": CREDIT_READINESS.name,
                "claims": ["/income_bracket", "/enterprise/udyam_pseudonym"],
            }
        ],
    )
    _decide(runtime, token, consent_id, "approve")
    got = _retrieve(runtime, consent_id)
    assert got.disclosed == ["/income_bracket"]
    assert [d.name for d in SdJwt.parse(got.credential).disclosures] == ["income_bracket"]


def test_the_credential_shared_is_the_newest_of_the_type_chosen(runtime: Runtime) -> None:
    # Retrieval reads the consent with the borrower's credentials of every type in one
    # statement (of the asked type only when one is asked) and shares one of the type the
    # consent's scope or the lender chose: never the newest of another type.
    token = _borrower(runtime)
    _issue(runtime, token, KYC.name, kyc_claims(token))
    readiness = _request(runtime, token)  # its only scope: CreditReadinessCredential
    both = _request(
        runtime,
        token,
        template="loan_monitoring",
        purpose="104",
        fetch_type="PERIODIC",
        frequency={"unit": "MONTH", "value": 5},
        scopes=[
            {"type": CREDIT_READINESS.name, "claims": ["/income_bracket"]},
            {"type": KYC.name, "claims": ["/birth_date"]},
        ],
    )
    for consent_id in (readiness, both):
        _decide(runtime, token, consent_id, "approve")
    got = _retrieve(runtime, readiness)
    assert SdJwt.parse(got.credential).payload["vct"] == CREDIT_READINESS.vct
    assert got.disclosed == ["/income_bracket"]
    got = _retrieve(runtime, both, type_name=KYC.name)
    assert (got.type, SdJwt.parse(got.credential).payload["vct"]) == (KYC.name, KYC.vct)
    assert got.disclosed == ["/birth_date"]
    got = _retrieve(runtime, both, type_name=CREDIT_READINESS.name)
    assert SdJwt.parse(got.credential).payload["vct"] == CREDIT_READINESS.vct
    # Two scopes and none asked: no type is chosen, and none is shared.
    assert _denied_reason(runtime, both) == "consent.scope_not_granted"


def test_an_agent_gets_at_most_three_codes_an_hour(runtime: Runtime) -> None:
    token = _borrower(runtime)
    agent = _identity(runtime, ["field_agent"])
    agent_principal = Principal(agent, "identity")
    _delegate_assist(runtime, token, agent)
    consent_id = _request(runtime, token)
    for _ in range(3):
        with transaction(runtime.sessions) as session:
            assert consent_assisted.assist(session, runtime, agent_principal, consent_id).code_sent
    with pytest.raises(ConsentStateInvalid), transaction(runtime.sessions) as session:
        consent_assisted.assist(session, runtime, agent_principal, consent_id)
    assert len(notify.read_codes(runtime, token)) == 3
    # Another consent has its own allowance.
    other = _request(runtime, token)
    with transaction(runtime.sessions) as session:
        assert consent_assisted.assist(session, runtime, agent_principal, other).code_sent


def test_concurrent_retrievals_count_each_allowed_use_once(runtime: Runtime) -> None:
    # A one-time consent and a periodic one allowing two fetches a window, each fetched by
    # six threads at once: exactly one and exactly two are allowed (the use is counted by
    # a conditional UPDATE), the others are refused as uses exceeded, and the counters agree.
    token = _borrower(runtime)
    once = _request(runtime, token)
    twice = _request(
        runtime,
        token,
        template="loan_monitoring",
        purpose="104",
        fetch_type="PERIODIC",
        frequency={"unit": "MONTH", "value": 2},
    )
    for consent_id in (once, twice):
        _decide(runtime, token, consent_id, "approve")
    outcomes: dict[str, list[str]] = {once: [], twice: []}
    start = threading.Barrier(12)

    def fetch(consent_id: str) -> None:
        start.wait()
        try:
            _retrieve(runtime, consent_id)
            outcome = "allowed"
        except Denied as e:
            outcome = e.reason
        outcomes[consent_id].append(outcome)

    threads = [threading.Thread(target=fetch, args=(c,)) for c in (once, twice) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes[once]) == ["allowed"] + ["consent.use_exceeded"] * 5
    assert sorted(outcomes[twice]) == ["allowed"] * 2 + ["consent.use_exceeded"] * 4
    with transaction(runtime.read_sessions) as session:
        counted = {c: session.get(ConsentRow, c) for c in (once, twice)}
        assert [(r.uses, r.window_uses) for r in counted.values() if r] == [(1, 1), (2, 2)]


def test_a_revocation_committed_after_the_read_refuses_the_use(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The consent is checked in the read unit of work, then revoked before the use is
    # counted: the conditional UPDATE sees the revocation, the retrieval is refused with
    # the current row's reason, and nothing is counted.
    token = _borrower(runtime)
    consent_id = _request(runtime, token)
    _decide(runtime, token, consent_id, "approve")
    real_read = retrieval._read

    def read_then_revoke(*args: Any, **kwargs: Any) -> Any:
        found = real_read(*args, **kwargs)
        _decide(runtime, token, consent_id, "revoke")
        return found

    monkeypatch.setattr(retrieval, "_read", read_then_revoke)
    with pytest.raises(Denied) as refused:
        _retrieve(runtime, consent_id)
    assert refused.value.reason == "consent.revoked"
    with transaction(runtime.read_sessions) as session:
        row = session.get(ConsentRow, consent_id)
        assert row is not None
        assert (row.status, row.uses) == ("REVOKED", 0)
