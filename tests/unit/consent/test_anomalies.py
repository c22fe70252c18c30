"""The anomaly rules as pure functions (consent/anomalies.py) and their settings
(core/alert_settings.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from credit_commons.consent.anomalies import (
    HOUR,
    Baseline,
    hour_of,
    is_usual_hour,
    lender_threshold,
    local_day,
    window_of,
)
from credit_commons.core.alert_settings import AlertSettings, parse_hours

AT = datetime(2026, 11, 3, 10, 17, 42, tzinfo=UTC)


def test_windows_are_aligned() -> None:
    assert window_of(AT, 600) == datetime(2026, 11, 3, 10, 10, tzinfo=UTC)
    assert window_of(AT, 3600) == hour_of(AT) == datetime(2026, 11, 3, 10, tzinfo=UTC)


def test_a_lender_without_enough_history_gets_the_cold_start_ceiling() -> None:
    settings = AlertSettings()
    hour = hour_of(AT)
    assert lender_threshold(settings, hour, Baseline(0, None)) == 1000
    assert lender_threshold(settings, hour, Baseline(10_000, hour - 23 * HOUR)) == 1000


def test_the_baseline_is_the_mean_over_whole_hours_quiet_ones_included() -> None:
    settings = AlertSettings()
    hour = hour_of(AT)
    # 48 hours of history, 4,800 retrievals: a mean of 100 an hour, x10.
    assert lender_threshold(settings, hour, Baseline(4800, hour - 48 * HOUR)) == 1000
    # A quiet lender is still held to the floor, never to less.
    assert lender_threshold(settings, hour, Baseline(48, hour - 48 * HOUR)) == 100
    # History older than the baseline's 168 hours is not counted in the mean's hours.
    assert lender_threshold(settings, hour, Baseline(16_800, hour - 500 * HOUR)) == 1000


@pytest.mark.parametrize(
    ("purpose", "hour", "usual"),
    [
        ("105", 6, True),
        ("105", 21, True),
        ("105", 22, False),
        ("105", 5, False),
        ("loan.underwriting", 3, False),
        ("104", 3, True),
        ("loan.monitoring", 23, True),
        (None, 12, True),
    ],
)
def test_usual_hours_per_purpose(purpose: str | None, hour: int, usual: bool) -> None:
    at = datetime(2026, 11, 3, hour, 30, tzinfo=UTC)
    assert is_usual_hour(AlertSettings(), purpose, at) is usual


def test_hours_may_wrap_past_midnight_and_are_local() -> None:
    night_shift = AlertSettings(purpose_hours={"105": "22-06"}, timezone="Asia/Kolkata")
    # 17:00 UTC is 22:30 in Kolkata; 02:00 UTC is 07:30.
    assert is_usual_hour(night_shift, "105", datetime(2026, 11, 3, 17, tzinfo=UTC))
    assert not is_usual_hour(night_shift, "105", datetime(2026, 11, 3, 2, tzinfo=UTC))
    # The "*" entry stays when a configuration leaves it out.
    assert night_shift.usual_hours("101") == (6, 22)
    assert local_day(night_shift, datetime(2026, 11, 3, 19, tzinfo=UTC)) == datetime(
        2026, 11, 3, 18, 30, tzinfo=UTC
    )


@pytest.mark.parametrize("text", ["6-22", "06-06", "24-06", "06-25", "06:00-22:00", ""])
def test_malformed_hours_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="hours"):
        parse_hours(text)
    with pytest.raises(ValidationError):
        AlertSettings(purpose_hours={"105": text})


def test_unknown_zones_and_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        AlertSettings(timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        AlertSettings.model_validate({"denial_bursts": 3})
    with pytest.raises(ValidationError):
        AlertSettings(lender_factor=1.0)
    assert AlertSettings().denial_window == 600
