"""The borrower's reads behind the console's "who saw what", on SQLite and PostgreSQL: the
history makes one keyed pseudonym per lender, not one per consent."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.consent_world import World

from credit_commons.consent import history
from credit_commons.core.db import transaction
from credit_commons.identity.auth import Principal


def test_one_pseudonym_per_lender(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    consents = [world.consent() for _ in range(3)]
    for consent_id in consents:
        assert world.fetch(consent_id).status_code == 200
    made: list[str] = []
    real = history.lender_actor

    def counted(rt: Any, client_id: str) -> str:
        made.append(client_id)
        return real(rt, client_id)

    monkeypatch.setattr(history, "lender_actor", counted)
    with transaction(world.rt.read_sessions) as session:
        entries = history.access_history(
            session, world.rt, Principal("admin:t", "admin"), world.borrower
        )
    assert made == [world.lender]
    assert [e.consent_id for e in entries] == consents[::-1]
    assert {(e.actor_kind, e.lender, e.lender_name) for e in entries} == {
        ("lender", world.lender, "Lender One")
    }
