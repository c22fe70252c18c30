"""The field agent of an assisted consent, by name, for the borrower; and the borrower
confirming an assisted consent with the code on their own phone (consent/assisted.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from credit_commons.consent import assisted, decisions, notify
from credit_commons.consent import requests as consent_requests
from credit_commons.consent.access import RefusedDecision
from credit_commons.consent.errors import OneTimeCodeRefused
from credit_commons.consent.model import ConsentRequest
from credit_commons.consent.models import ConsentRow
from credit_commons.core.db import transaction
from credit_commons.core.errors import NotFoundError
from credit_commons.events import EventRow
from credit_commons.identity import delegations
from credit_commons.identity import service as identity_service
from credit_commons.identity.auth import Principal
from credit_commons.identity.schemas import DelegationCreate, IdentityCreate
from credit_commons.issuer.catalogue import CREDIT_READINESS
from credit_commons.privacy.erasure import erase_subject
from credit_commons.runtime import Runtime

ADMIN = Principal("admin:test", "admin")
LENDER_ID = "lnd_" + "a" * 22


class _Lender:
    client_id = LENDER_ID
    purposes = frozenset({"105"})


def _identity(rt: Runtime, name: str, roles: list[str]) -> str:
    with transaction(rt.sessions) as session:
        body = IdentityCreate.model_validate({"roles": roles, "profile": {"name": name}})
        return str(identity_service.create_identity(session, rt, body).identity_token)


def _delegate(rt: Runtime, token: str, agent: str) -> None:
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


def _request(rt: Runtime, token: str) -> str:
    body = {
        "template": "loan_underwriting",
        "borrower": token,
        "purpose": "105",
        "consent_expiry": (rt.clock.now() + timedelta(days=7)).isoformat(),
        "scopes": [{"type": CREDIT_READINESS.name, "claims": ["/income_bracket"]}],
    }
    with transaction(rt.sessions) as session:
        made = consent_requests.request_consent(
            session, rt, _Lender(), ConsentRequest.model_validate(body)
        )
    return made.consent_id


def _setup(rt: Runtime) -> tuple[str, str, str]:
    """A borrower, an agent named Meena Kumari with their delegation, and a pending
    consent of the borrower's, with a code sent by the agent."""
    token = _identity(rt, "Ravi Traders", ["business"])
    agent = _identity(rt, "Meena Kumari", ["field_agent"])
    _delegate(rt, token, agent)
    consent_id = _request(rt, token)
    with transaction(rt.sessions) as session:
        assisted.assist(session, rt, Principal(agent, "identity"), consent_id)
    return token, agent, consent_id


def _code(rt: Runtime, token: str) -> str:
    return notify.read_codes(rt, token)[-1].code


def _wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def test_the_borrower_sees_the_agents_name_once_the_agent_confirmed(runtime: Runtime) -> None:
    token, agent, consent_id = _setup(runtime)
    me = Principal(token, "identity")
    with transaction(runtime.read_sessions) as session:
        preparing = assisted.assisting_agent(session, runtime, me, consent_id)
    assert preparing is not None
    assert (preparing.name, preparing.granted) == ("Meena Kumari", False)
    with transaction(runtime.sessions) as session:
        row = session.get(ConsentRow, consent_id)
        assert row is not None
        assert row.facilitator_name_sealed is not None
        assert b"Meena" not in row.facilitator_name_sealed  # sealed, not in clear
        done = assisted.confirm_assisted(
            session, runtime, Principal(agent, "identity"), consent_id, _code(runtime, token)
        )
    assert done.accepted is True
    with transaction(runtime.read_sessions) as session:
        one = assisted.assisting_agent(session, runtime, me, consent_id)
        many = assisted.assisting_agents(
            session, runtime, me, token, [consent_id, "cns_" + "0" * 26]
        )
    assert one is not None
    assert (one.consent_id, one.name, one.granted) == (consent_id, "Meena Kumari", True)
    assert many == {consent_id: one}


def test_only_the_borrower_may_read_the_agents_name(runtime: Runtime) -> None:
    token, agent, consent_id = _setup(runtime)
    other = _identity(runtime, "Someone Else", ["business"])
    with transaction(runtime.read_sessions) as session:
        for who in (Principal(other, "identity"), Principal(agent, "identity")):
            with pytest.raises(NotFoundError):
                assisted.assisting_agent(session, runtime, who, consent_id)
            with pytest.raises(NotFoundError):
                assisted.assisting_agents(session, runtime, who, token, [consent_id])
        # Another borrower's consent id in one's own list is left out.
        assert (
            assisted.assisting_agents(
                session, runtime, Principal(other, "identity"), other, [consent_id]
            )
            == {}
        )


def test_an_approval_without_the_agent_forgets_the_agent(runtime: Runtime) -> None:
    token, _agent, consent_id = _setup(runtime)
    with transaction(runtime.sessions) as session:
        decisions.decide(session, runtime, Principal(token, "identity"), consent_id, "approve")
    with transaction(runtime.read_sessions) as session:
        row = session.get(ConsentRow, consent_id)
        assert row is not None
        assert row.approval == "self"
        assert row.facilitator_token is None
        assert row.facilitator_name_sealed is None
        assert (
            assisted.assisting_agent(session, runtime, Principal(token, "identity"), consent_id)
            is None
        )


def test_a_consent_nobody_assisted_has_no_agent(runtime: Runtime) -> None:
    token = _identity(runtime, "Ravi Traders", ["business"])
    consent_id = _request(runtime, token)
    me = Principal(token, "identity")
    with transaction(runtime.read_sessions) as session:
        assert assisted.assisting_agent(session, runtime, me, consent_id) is None
        assert assisted.assisting_agents(session, runtime, me, token, [consent_id]) == {}


def test_the_agents_erasure_forgets_them_in_the_consents_they_helped_with(
    runtime: Runtime,
) -> None:
    token, agent, consent_id = _setup(runtime)
    with transaction(runtime.sessions) as session:
        assisted.confirm_assisted(
            session, runtime, Principal(agent, "identity"), consent_id, _code(runtime, token)
        )
    with transaction(runtime.sessions) as session:
        erase_subject(session, runtime, ADMIN, agent)
    with transaction(runtime.read_sessions) as session:
        row = session.get(ConsentRow, consent_id)
        assert row is not None
        assert row.facilitator_token is None
        assert row.facilitator_name_sealed is None
        found = assisted.assisting_agent(session, runtime, Principal(token, "identity"), consent_id)
    # The consent still says an agent helped; their name is gone with them.
    assert found is not None
    assert (found.name, found.granted) == (None, True)


def test_a_consent_assisted_before_names_were_recorded_has_a_nameless_agent(
    runtime: Runtime,
) -> None:
    token, _agent, consent_id = _setup(runtime)
    with transaction(runtime.sessions) as session:
        row = session.get(ConsentRow, consent_id)
        assert row is not None
        row.facilitator_token = row.facilitator_name_sealed = None
    with transaction(runtime.read_sessions) as session:
        found = assisted.assisting_agent(session, runtime, Principal(token, "identity"), consent_id)
    assert found is not None
    assert (found.name, found.granted) == (None, False)


def test_the_borrower_confirms_on_their_own_phone(runtime: Runtime) -> None:
    token, _agent, consent_id = _setup(runtime)
    me = Principal(token, "identity")
    code = _code(runtime, token)
    with transaction(runtime.sessions) as session:
        wrong = assisted.confirm_assisted_by_borrower(
            session, runtime, me, consent_id, _wrong(code)
        )
    assert wrong.accepted is False
    assert wrong.status == "PENDING"
    with transaction(runtime.sessions) as session:
        done = assisted.confirm_assisted_by_borrower(session, runtime, me, consent_id, code)
    assert done.accepted is True
    assert done.status == "ACTIVE"
    with transaction(runtime.read_sessions) as session:
        row = session.get(ConsentRow, consent_id)
        assert row is not None
        assert row.approval == "assisted"
        assert row.otp_hash is None
        found = assisted.assisting_agent(session, runtime, me, consent_id)
        reasons = list(
            session.scalars(select(EventRow.details).where(EventRow.type == "access.denied"))
        )
    assert found is not None
    assert (found.name, found.granted) == ("Meena Kumari", True)
    assert any("consent.otp_invalid" in str(r) for r in reasons)
    # The code is spent: it cannot be used again (and the consent is no longer pending).
    with pytest.raises(NotFoundError), transaction(runtime.sessions) as session:
        assisted.confirm_assisted_by_borrower(session, runtime, me, consent_id, code)


def test_only_the_borrower_confirms_on_their_phone_and_only_a_sent_code(runtime: Runtime) -> None:
    token, _agent, consent_id = _setup(runtime)
    code = _code(runtime, token)
    stranger = Principal(_identity(runtime, "Stranger", ["business"]), "identity")
    for who in (stranger, ADMIN):
        with pytest.raises(RefusedDecision), transaction(runtime.sessions) as session:
            assisted.confirm_assisted_by_borrower(session, runtime, who, consent_id, code)
    # Without an agent's code there is nothing to confirm.
    unassisted = _request(runtime, token)
    with pytest.raises(OneTimeCodeRefused), transaction(runtime.sessions) as session:
        assisted.confirm_assisted_by_borrower(
            session, runtime, Principal(token, "identity"), unassisted, code
        )
