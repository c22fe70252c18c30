"""The rules of anomalous access, as pure functions over counts and times (issue 21 item 4;
the monitor that applies them is ``consent/monitor.py``, the thresholds
:class:`~credit_commons.core.alert_settings.AlertSettings`).

1. **Denial burst**: ``denial_burst`` refused attempts on one borrower's data within one
   aligned window of ``denial_window`` seconds.
2. **Lender above its baseline**: a lender's retrievals in one hour reach
   ``max(lender_floor, ceil(lender_factor x its mean hourly retrievals))``, the mean taken over
   the hours from its first counted hour (at most ``baseline_hours`` back) to this one, quiet
   hours included.  *Cold start*: a lender first counted less than ``lender_history_hours``
   ago has no baseline yet and is held to the fixed ceiling ``lender_cold_start``.
3. **Unusual hours**: a retrieval under a consent whose purpose's usual local hours
   (``purpose_hours``, in ``timezone``) do not include the hour it happened in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from credit_commons.core.alert_settings import AlertSettings
from credit_commons.core.clock import utc

__all__ = [
    "HOUR",
    "Baseline",
    "hour_of",
    "is_usual_hour",
    "lender_threshold",
    "local_day",
    "local_hour",
    "window_of",
]

HOUR = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_of(at: datetime, seconds: int) -> datetime:
    """The start of the aligned window of ``seconds`` that ``at`` falls in (UTC)."""
    elapsed = int((utc(at) - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=elapsed - elapsed % seconds)


def hour_of(at: datetime) -> datetime:
    """The UTC hour ``at`` falls in."""
    return utc(at).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Baseline:
    """A lender's counted history before an hour: retrievals in total, and its first
    counted hour (None: no history)."""

    total: int
    first: datetime | None


def lender_threshold(settings: AlertSettings, hour: datetime, history: Baseline) -> int:
    """The retrievals in ``hour`` at which a lender with ``history`` alerts (rule 2)."""
    if history.first is None or hour - history.first < settings.lender_history_hours * HOUR:
        return settings.lender_cold_start
    hours = min(settings.baseline_hours, int((hour - history.first) / HOUR))
    mean = history.total / hours
    return max(settings.lender_floor, math.ceil(settings.lender_factor * mean))


def is_usual_hour(settings: AlertSettings, purpose: str | None, at: datetime) -> bool:
    """Whether a retrieval at ``at`` under a consent for ``purpose`` is within its usual
    local hours (rule 3)."""
    start, end = settings.usual_hours(purpose)
    hour = local_hour(settings, at)
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end  # a range past midnight ("22-06")


def local_day(settings: AlertSettings, at: datetime) -> datetime:
    """The start (as UTC) of the local day ``at`` falls in: the window of rule 3."""
    local = utc(at).astimezone(ZoneInfo(settings.timezone))
    return utc(local.replace(hour=0, minute=0, second=0, microsecond=0))


def local_hour(settings: AlertSettings, at: datetime) -> int:
    """The local hour (0-23) of ``at`` in the alerts' time zone."""
    return utc(at).astimezone(ZoneInfo(settings.timezone)).hour
