"""The thresholds of anomalous-access detection (``COMMONS_ALERTS``, docs/operations.md
"Monitoring and alerts").

One JSON object in the environment, so the monitor's dozen knobs are one setting:
``COMMONS_ALERTS='{"denial_burst": 20, "timezone": "Asia/Kolkata"}'``; keys left out keep
their defaults.  Checked once at start-up like every setting.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["DEFAULT_PURPOSE_HOURS", "AlertSettings", "parse_hours"]

_HOURS = re.compile(r"([01][0-9]|2[0-4])-([01][0-9]|2[0-4])")

DEFAULT_PURPOSE_HOURS: dict[str, str] = {
    # Any purpose: a person's working day, local time.  Account monitoring (AA purpose 104)
    # and loan monitoring are periodic fetches a lender may schedule at night: any hour.
    "*": "06-22",
    "104": "00-24",
    "loan.monitoring": "00-24",
}


def parse_hours(text: str) -> tuple[int, int]:
    """``"06-22"`` as ``(6, 22)``: retrievals from 06:00 up to (not including) 22:00 are
    usual.  A start after the end wraps past midnight (``"22-06"``).  Raises
    :class:`ValueError` for anything else."""
    match = _HOURS.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r}: usual hours look like 06-22 (hours 00 to 24)")
    start, end = int(match.group(1)), int(match.group(2))
    if start in {end, 24}:
        raise ValueError(f"{text!r}: an empty range of hours")
    return start, end


class AlertSettings(BaseModel):
    """When the monitor raises an ``alert.raised`` (consent/monitor.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    denial_burst: int = Field(
        default=10, ge=2, description="denials for one borrower within one window that alert"
    )
    denial_window: int = Field(
        default=600, ge=60, le=86400, description="seconds of a denial window (aligned)"
    )
    lender_factor: float = Field(
        default=10.0, ge=1.5, description="an hour this many times the lender's mean alerts"
    )
    lender_floor: int = Field(
        default=100, ge=1, description="retrievals an hour below which a lender never alerts"
    )
    lender_cold_start: int = Field(
        default=1000, ge=1, description="the hourly ceiling of a lender without enough history"
    )
    lender_history_hours: int = Field(
        default=24, ge=1, le=720, description="hours of history before the baseline applies"
    )
    baseline_hours: int = Field(
        default=168, ge=2, le=2160, description="hours the baseline is learned over"
    )
    purpose_hours: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_PURPOSE_HOURS),
        description='usual local hours per purpose code, "*" for the rest',
    )
    timezone: str = Field(default="UTC", description="the zone usual hours are local to")

    @field_validator("purpose_hours")
    @classmethod
    def _hours(cls, value: dict[str, str]) -> dict[str, str]:
        for hours in value.values():
            parse_hours(hours)
        if "*" not in value:
            value = {**value, "*": DEFAULT_PURPOSE_HOURS["*"]}
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"{value!r} is not a known time zone (IANA name)") from e
        return value

    def usual_hours(self, purpose: str | None) -> tuple[int, int]:
        """The usual local hours of ``purpose`` (the ``"*"`` entry for one not listed)."""
        return parse_hours(self.purpose_hours.get(purpose or "*", self.purpose_hours["*"]))
