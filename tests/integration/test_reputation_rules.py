"""The reputation rule-set registry on both databases: registration enforces the time lock to
the second, signs the rule set and records ``rules.changed`` in the same transaction;
versions only go up and every version stays readable; the active rule set is the highest
version in effect; a tampered row is refused; ``--dev`` is refused in production; the HTTP
routes and the CLI read the registry."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from credit_commons.cli import main
from credit_commons.core import Environment, FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.encoding import sha256_hex
from credit_commons.events import EventRow
from credit_commons.keys import KeyType, public_key_from_jwk
from credit_commons.keys import service as key_service
from credit_commons.reputation import rules_service
from credit_commons.reputation.rules import (
    RuleSetDomainTooBroad,
    RuleSetNotFound,
    RuleSetSignatureInvalid,
    RuleSetTimeLocked,
    verify_rule_set,
)
from credit_commons.reputation.rules_errors import DevRuleSetNotAllowed, RuleSetVersionConflict
from credit_commons.reputation.rules_store import RuleSetRow
from credit_commons.runtime import Runtime

NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def document(version: int = 1, valid_from: datetime | None = None, **changes: Any) -> Any:
    doc = rules_service.dev_rule_set_document(
        valid_from=valid_from or NOW + timedelta(days=7), trusted_issuer="https://kyc.example"
    )
    doc.update(version=version, **changes)
    return doc


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    return replace(runtime, clock=FixedClock(NOW))


def _register(rt: Runtime, doc: Any, *, dev: bool = False) -> Any:
    with transaction(rt.sessions) as session:
        return rules_service.register_rule_set(
            session, rt, doc, actor=rt.operator_actor("reputation"), dev=dev
        )


def _events(rt: Runtime) -> list[EventRow]:
    with transaction(rt.sessions) as session:
        rows = session.scalars(select(EventRow).where(EventRow.type == "rules.changed"))
        return list(rows)


def test_the_time_lock_holds_to_the_second(rt: Runtime) -> None:
    with pytest.raises(RuleSetTimeLocked):
        _register(rt, document(valid_from=NOW + timedelta(days=7) - timedelta(seconds=1)))
    assert _events(rt) == []
    view = _register(rt, document(valid_from=NOW + timedelta(days=7)))
    assert view.valid_from == "2026-12-14T01:00:00Z"
    assert view.published_at == "2026-12-07T01:00:00Z"
    assert view.dev is False
    events = _events(rt)
    assert len(events) == 1
    details = events[0].details
    details = json.loads(details) if isinstance(details, str) else details
    assert details["rule_set"] == "shg-rules"
    assert details["version"] == 1
    assert details["hash"] == view.hash
    assert details["dev"] is False


def test_registration_signs_and_stores_what_clients_pin(rt: Runtime) -> None:
    view = _register(rt, document())
    assert view.hash == sha256_hex(json.dumps(document(), sort_keys=True,
                                              separators=(",", ":")).encode())  # fmt: skip
    with transaction(rt.sessions) as session:
        versions = key_service.platform_key_versions(
            session, rt, key_service.PlatformKey("reputation-rules", KeyType.ED25519, "x")
        )
    signed = verify_rule_set(view.token, versions[-1].public_key, iss=rt.settings.public_url)
    assert signed.rule_set.hash == view.hash
    assert signed.rule_set.document() == view.rule_set == document()


def test_a_guard_is_refused_before_anything_is_written(rt: Runtime) -> None:
    doc = document()
    doc["aura"]["domain"] = "ab:*"
    with pytest.raises(RuleSetDomainTooBroad):
        _register(rt, doc)
    with transaction(rt.sessions) as session:
        assert session.scalars(select(RuleSetRow)).all() == []
    assert _events(rt) == []


def test_versions_only_go_up_and_the_active_one_is_in_effect(rt: Runtime) -> None:
    _register(rt, document(1, NOW + timedelta(days=7)))
    with pytest.raises(RuleSetVersionConflict):
        _register(rt, document(1, NOW + timedelta(days=8)))
    _register(rt, document(3, NOW + timedelta(days=30)))
    with pytest.raises(RuleSetVersionConflict):
        _register(rt, document(2, NOW + timedelta(days=9)))
    with transaction(rt.sessions) as session:
        with pytest.raises(RuleSetNotFound):
            rules_service.active_rule_set(session, rt, NOW)
        day7 = NOW + timedelta(days=7)
        assert rules_service.active_rule_set(session, rt, day7).rule_set.version == 1
        before = NOW + timedelta(days=30) - timedelta(seconds=1)
        assert rules_service.active_rule_set(session, rt, before).rule_set.version == 1
        after = NOW + timedelta(days=30)
        assert rules_service.active_rule_set(session, rt, after).rule_set.version == 3
        assert rules_service.get_rule_set(session, rt, "shg-rules").rule_set.version == 3
        assert rules_service.get_rule_set(session, rt, "shg-rules", 1).rule_set.version == 1
        with pytest.raises(RuleSetNotFound):
            rules_service.get_rule_set(session, rt, "shg-rules", 2)
        with pytest.raises(RuleSetNotFound):
            rules_service.get_rule_set(session, rt, "other-rules")
        listed = rules_service.list_rule_sets(session, rt)
    assert [(v.id, v.version) for v in listed] == [("shg-rules", 1), ("shg-rules", 3)]
    assert len(_events(rt)) == 2


def test_a_new_version_cannot_shorten_the_notice_in_effect(rt: Runtime) -> None:
    # Version 1 (7 days of notice) is in effect from day 7; on day 8 a version 2 that asks for
    # one day of notice still waits out version 1's seven (one second short is refused).
    _register(rt, document(1, NOW + timedelta(days=7)))
    day8 = replace(rt, clock=FixedClock(NOW + timedelta(days=8)))
    short = document(2, NOW + timedelta(days=15) - timedelta(seconds=1), timeLockDays=1)
    with pytest.raises(RuleSetTimeLocked, match="7 days of notice"):
        _register(day8, short)
    assert _register(day8, document(2, NOW + timedelta(days=15), timeLockDays=1)).version == 2
    assert len(_events(rt)) == 2


_TAMPERS = [
    lambda row: setattr(row, "token", row.token[:-4] + "AAAA"),
    lambda row: setattr(row, "version", 7),
    lambda row: setattr(row, "hash", "0" * 64),
    lambda row: setattr(row, "document", row.document.replace(b'"10"', b'"99"')),
    lambda row: setattr(row, "valid_from", row.valid_from - timedelta(days=1)),
]


@pytest.mark.parametrize("tamper", _TAMPERS)
def test_a_row_tampered_after_a_verified_read_is_refused(rt: Runtime, tamper: Any) -> None:
    # The verified rule set is kept per runtime by the row's exact columns: a changed row is
    # verified afresh, not served from what was verified before.
    _register(rt, document(valid_from=NOW), dev=True)
    for _ in range(2):  # verified, then kept
        with transaction(rt.sessions) as session:
            assert rules_service.active_rule_set(session, rt, NOW).view.version == 1
    with transaction(rt.sessions) as session:
        row = session.get(RuleSetRow, ("shg-rules", 1))
        assert row is not None
        tamper(row)
    with transaction(rt.sessions) as session, pytest.raises(RuleSetSignatureInvalid):
        rules_service.list_rule_sets(session, rt)
    if tamper is not _TAMPERS[1]:  # (version 7 is no longer version 1 of the id)
        with transaction(rt.sessions) as session, pytest.raises(RuleSetSignatureInvalid):
            rules_service.active_rule_set(session, rt, NOW)


@pytest.mark.parametrize("tamper", _TAMPERS)
def test_a_tampered_row_is_refused(rt: Runtime, tamper: Any) -> None:
    _register(rt, document())
    with transaction(rt.sessions) as session:
        row = session.get(RuleSetRow, ("shg-rules", 1))
        assert row is not None
        tamper(row)
    with transaction(rt.sessions) as session, pytest.raises(RuleSetSignatureInvalid):
        rules_service.list_rule_sets(session, rt)


def test_dev_registration_skips_the_lock_outside_production_only(rt: Runtime) -> None:
    view = _register(rt, document(valid_from=NOW), dev=True)
    assert view.dev is True
    with transaction(rt.sessions) as session:
        assert rules_service.active_rule_set(session, rt, NOW).view.version == 1
    production = replace(
        rt, settings=rt.settings.model_copy(update={"env": Environment.PRODUCTION})
    )
    with pytest.raises(DevRuleSetNotAllowed):
        _register(production, document(2, NOW), dev=True)
    with transaction(rt.sessions) as session, pytest.raises(DevRuleSetNotAllowed):
        rules_service.active_rule_set(session, production, NOW)
    with transaction(rt.sessions) as session, pytest.raises(DevRuleSetNotAllowed):
        rules_service.register_dev_rule_set(session, production, actor=rt.operator_actor())
    # Production registers a rule set that keeps its time lock.
    locked = _register(production, document(2, NOW + timedelta(days=7)))
    assert locked.dev is False


def test_the_dev_example_registers_once_and_is_in_effect_now(rt: Runtime) -> None:
    with transaction(rt.sessions) as session:
        view = rules_service.register_dev_rule_set(session, rt, actor=rt.operator_actor())
        again = rules_service.register_dev_rule_set(session, rt, actor=rt.operator_actor())
        active = rules_service.active_rule_set(session, rt, NOW)
    assert view is not None
    assert again is None
    assert (view.version, view.valid_from, view.dev) == (1, "2026-12-07T01:00:00Z", True)
    assert active.rule_set.kyc.trusted_issuers == (rt.settings.public_url,)
    assert active.view == view


def test_http_serves_the_active_and_pinned_rule_sets(runtime: Runtime, client: TestClient) -> None:
    missing = client.get("/v1/rules/active")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["code"] == "reputation.rules_unknown"
    now = runtime.clock.now().replace(microsecond=0)
    _register(runtime, document(1, now), dev=True)
    _register(runtime, document(2, now + timedelta(days=8)))
    active = client.get("/v1/rules/active")
    assert active.status_code == 200
    body = active.json()
    assert (body["id"], body["version"]) == ("shg-rules", 1)
    assert body["token"].count(".") == 2
    assert body["hash"] == sha256_hex(
        json.dumps(body["rule_set"], sort_keys=True, separators=(",", ":")).encode()
    )
    assert client.get("/v1/rules/shg-rules").json()["version"] == 2
    assert client.get("/v1/rules/shg-rules", params={"version": 1}).json() == body
    gone = client.get("/v1/rules/shg-rules", params={"version": 3})
    assert gone.status_code == 404
    assert gone.json()["code"] == "reputation.rules_unknown"
    for bad in ("/v1/rules/BAD!", "/v1/rules/ab", "/v1/rules/shg-rules?version=0",
                "/v1/rules/shg-rules?version=x"):  # fmt: skip
        refused = client.get(bad)
        assert refused.status_code == 422, bad
        assert refused.headers["content-type"].startswith("application/problem+json")


def test_cli_registers_lists_and_shows(
    tmp_path: Path,
    backend_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMONS_DATABASE_URL", backend_url)
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["rules", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr()[0]) == []
    assert main(["rules", "show"]) != 0
    assert "reputation.rules_unknown" in capsys.readouterr()[1]
    # A file whose validFrom is not a week away: refused by its time lock.
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document(valid_from=datetime.now(UTC))))
    assert main(["rules", "register", str(path)]) != 0
    assert "reputation.rules_time_locked" in capsys.readouterr()[1]
    assert main(["rules", "register"]) != 0
    capsys.readouterr()
    # The same file as a development registration; then the example as version 2, once.
    assert main(["rules", "register", str(path), "--dev", "--json"]) == 0
    assert json.loads(capsys.readouterr()[0])["version"] == 1
    assert main(["rules", "register", "--dev", "--json"]) == 0
    assert json.loads(capsys.readouterr()[0])["version"] == 2
    assert main(["rules", "register", "--dev"]) == 0
    assert "nothing new" in capsys.readouterr()[0]
    assert main(["rules", "list", "--json"]) == 0
    assert [v["version"] for v in json.loads(capsys.readouterr()[0])] == [1, 2]
    assert main(["rules", "show"]) == 0
    shown = capsys.readouterr()[0]
    assert "shg-rules version 2 (dev), hash " in shown
    assert main(["rules", "show", "shg-rules", "--version", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr()[0])["version"] == 1


def test_the_published_key_verifies_the_served_token(runtime: Runtime, client: TestClient) -> None:
    now = runtime.clock.now().replace(microsecond=0)
    _register(runtime, document(1, now), dev=True)
    served = client.get("/v1/rules/active").json()
    keys = client.get("/v1/rules/jwks")
    assert keys.status_code == 200
    (jwk,) = keys.json()["keys"]
    signed = verify_rule_set(served["token"], public_key_from_jwk(jwk))
    assert signed.rule_set.hash == served["hash"]
