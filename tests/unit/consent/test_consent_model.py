"""The consent model: template caps, the order of the check's verdicts, use counting."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from credit_commons.consent.errors import (
    ConsentError,
    ConsentExpired,
    ConsentNotActive,
    ConsentNotYetValid,
    ConsentPaused,
    ConsentRequestInvalid,
    ConsentRevoked,
    ScopeNotGranted,
    UseExceeded,
)
from credit_commons.consent.model import ConsentRequest, ConsentView, evaluate, next_use

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TYPES = {"CreditReadinessCredential": ("/income_bracket", "/score_opening")}


def request(**overrides: Any) -> ConsentRequest:
    body: dict[str, Any] = {
        "template": "loan_underwriting",
        "borrower": "idt_" + "a" * 22,
        "purpose": "105",
        "consent_expiry": (NOW + timedelta(days=7)).isoformat(),
        "scopes": [{"type": "CreditReadinessCredential", "claims": ["/income_bracket"]}],
    }
    body.update(overrides)
    return ConsentRequest.model_validate(body)


def test_a_fair_underwriting_request_passes() -> None:
    request().check_template(NOW, TYPES)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"template": "nope_template"}, "template"),
        ({"purpose": "101"}, "purpose"),
        ({"purpose": "104"}, "purpose"),
        ({"fetch_type": "PERIODIC"}, "fetch_type"),
        ({"consent_expiry": (NOW + timedelta(days=31)).isoformat()}, "consent_expiry"),
        ({"consent_expiry": (NOW - timedelta(days=1)).isoformat()}, "consent_expiry"),
        ({"data_life": {"unit": "MONTH", "value": 2}}, "data_life"),
        ({"data_life": {"unit": "YEAR", "value": 1}}, "data_life"),
        (
            {"scopes": [{"type": "CreditReadinessCredential", "claims": ["/credit_tier"]}]},
            "scopes.0.claims",
        ),
        ({"scopes": [{"type": "UnknownCredential", "claims": []}]}, "scopes.0.type"),
        (
            {
                "consent_start": (NOW - timedelta(days=2)).isoformat(),
                "consent_expiry": (NOW + timedelta(days=1)).isoformat(),
            },
            "consent_start",
        ),
    ],
)
def test_template_caps_are_enforced(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConsentRequestInvalid) as e:
        request(**overrides).check_template(NOW, TYPES)
    fields = [p["field"] for p in e.value.extra.get("errors", [])] or [e.value.extra["field"]]
    assert field in fields


def test_monitoring_is_periodic_and_frequency_capped() -> None:
    fine = request(
        template="loan_monitoring",
        purpose="loan.monitoring",
        fetch_type="PERIODIC",
        frequency={"unit": "DAY", "value": 1},
        data_life={"unit": "YEAR", "value": 1},
        consent_expiry=(NOW + timedelta(days=300)).isoformat(),
    )
    fine.check_template(NOW, TYPES)
    greedy = fine.model_copy(
        update={"frequency": fine.frequency.model_copy(update={"unit": "HOUR"})}
    )
    with pytest.raises(ConsentRequestInvalid):
        greedy.check_template(NOW, TYPES)


def test_unknown_request_members_are_refused() -> None:
    with pytest.raises(ValueError, match="extra"):
        request(lender_override="x")


VIEW = ConsentView(
    status="ACTIVE",
    starts_at=NOW - timedelta(hours=1),
    expires_at=NOW + timedelta(days=7),
    fetch_type="ONETIME",
    frequency_unit="DAY",
    frequency_value=1,
    scopes={"CreditReadinessCredential": frozenset({"/income_bracket"})},
    uses=0,
    window=-1,
    window_uses=0,
)
CLAIMS = frozenset({"/income_bracket"})


def test_an_active_consent_in_scope_permits() -> None:
    evaluate(VIEW, "CreditReadinessCredential", CLAIMS, NOW)
    evaluate(VIEW, "CreditReadinessCredential", frozenset(), NOW)


@pytest.mark.parametrize(
    ("changes", "type_name", "claims", "error"),
    [
        ({"status": "REVOKED"}, None, None, ConsentRevoked),
        ({"status": "REJECTED"}, None, None, ConsentRevoked),
        ({"status": "PAUSED"}, None, None, ConsentPaused),
        ({"status": "EXPIRED"}, None, None, ConsentExpired),
        ({"expires_at": NOW}, None, None, ConsentExpired),
        ({"status": "PENDING"}, None, None, ConsentNotActive),
        ({"starts_at": NOW + timedelta(seconds=1)}, None, None, ConsentNotYetValid),
        ({}, "OtherCredential", None, ScopeNotGranted),
        ({}, None, frozenset({"/income_bracket", "/score_opening"}), ScopeNotGranted),
        ({"uses": 1}, None, None, UseExceeded),
        # Precedence: a revoked consent is revoked even when also expired and used.
        ({"status": "REVOKED", "expires_at": NOW, "uses": 5}, None, None, ConsentRevoked),
        ({"status": "PAUSED", "uses": 5}, None, None, ConsentPaused),
    ],
)
def test_each_reason(
    changes: dict[str, Any],
    type_name: str | None,
    claims: frozenset[str] | None,
    error: type[ConsentError],
) -> None:
    view = replace(VIEW, **changes)
    with pytest.raises(error) as e:
        evaluate(view, type_name or "CreditReadinessCredential", claims or CLAIMS, NOW)
    assert type(e.value) is error


def test_periodic_windows_count_from_the_start() -> None:
    periodic = replace(VIEW, fetch_type="PERIODIC", frequency_unit="DAY", frequency_value=2)
    window, used = next_use(periodic, NOW)
    assert (window, used) == (0, 1)
    second = replace(periodic, window=window, window_uses=used)
    assert next_use(second, NOW) == (0, 2)
    full = replace(periodic, window=0, window_uses=2)
    with pytest.raises(UseExceeded):
        next_use(full, NOW)
    # The next day's window starts afresh.
    assert next_use(full, NOW + timedelta(days=1)) == (1, 1)
