"""The access monitor: anomalous-access alerts and the event totals of ``/metrics``
(issue 21 item 4; docs/operations.md "Monitoring and alerts").

A worker step (``jobs.monitor_step``) reads the spine's events in the order the log
sequenced them, from a cursor of its own (``access_monitor``), and in one transaction per
pass: counts every event by (type, operation, reason) into ``event_totals`` (an alert
when it is raised, with its kind as the operation); counts denials
per borrower and window and retrievals per lender and hour into ``access_counts``; applies
the rules of :mod:`consent.anomalies`; and for each rule broken records the alert
(``access_alerts``, keyed by kind, subject and window), an ``alert.raised`` event and a
signed webhook to the operator — then moves the cursor past the leaves it read.  All of it
commits together or not at all, so a crash or a restart reads the same leaves again and
raises nothing twice; the row lock on the cursor keeps two workers from reading the same
leaves at once.  Following the log's order (not the events' timestamps) means no event
committed late is skipped.

Rules use the events' own times, so replaying a day of traffic gives the same alerts as
living through it.  Alerts name pseudonyms only (the borrower's for a denial burst, the
lender's otherwise); the webhook carries the same machine fields.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from credit_commons.consent import webhooks
from credit_commons.consent.anomalies import (
    HOUR,
    Baseline,
    hour_of,
    is_usual_hour,
    lender_threshold,
    local_day,
    local_hour,
    window_of,
)
from credit_commons.consent.models import (
    AccessAlertRow,
    AccessCountRow,
    AccessMonitorRow,
    EventTotalRow,
)
from credit_commons.core.clock import utc
from credit_commons.core.db import transaction
from credit_commons.events import EventDetails, EventRow, Token, record_event
from credit_commons.ledger import service as ledger
from credit_commons.runtime import Runtime

__all__ = [
    "MONITOR",
    "AlertKind",
    "AlertRaised",
    "MonitorReport",
    "event_totals",
    "monitor_lag",
    "monitor_pass",
    "prune_counts",
]

MONITOR = "access"
AlertKind = Literal["denial_burst", "lender_baseline", "off_hours"]
_DENIALS, _RETRIEVALS = "denials", "retrievals"
_COUNTS = cast(Table, AccessCountRow.__table__)
_TOTALS = cast(Table, EventTotalRow.__table__)


class AlertRaised(EventDetails, event_type="alert.raised"):
    """An anomalous-access alert: which rule (``kind``), the start of the window it is
    about, the events counted in that window when it was raised and the threshold they
    reached (rule 3: ``count`` 1, ``threshold`` 0, with the consent's ``purpose`` and the
    local ``hour`` of the retrieval)."""

    kind: AlertKind
    window: datetime
    count: int
    threshold: int
    purpose: Token | None = None
    hour: int | None = None


@dataclass
class MonitorReport:
    """What one pass read and raised."""

    leaves: int = 0
    alerts: dict[str, int] = field(default_factory=dict)


@dataclass
class _Pass:
    """One pass's state: counts loaded and changed, thresholds and purposes looked up."""

    session: Session
    rt: Runtime
    counts: dict[tuple[str, str, datetime], int] = field(default_factory=dict)
    changed: set[tuple[str, str, datetime]] = field(default_factory=set)
    thresholds: dict[tuple[str, datetime], int] = field(default_factory=dict)
    purposes: dict[str, str | None] = field(default_factory=dict)
    totals: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    report: MonitorReport = field(default_factory=MonitorReport)

    def add(self, kind: str, key: str, bucket: datetime) -> int:
        """One more in the (kind, key, bucket) count; the new count."""
        slot = (kind, key, bucket)
        if slot not in self.counts:
            stored = self.session.get(AccessCountRow, slot)
            self.counts[slot] = stored.count if stored is not None else 0
        self.counts[slot] += 1
        self.changed.add(slot)
        return self.counts[slot]


def monitor_pass(rt: Runtime, *, limit: int = 2000) -> MonitorReport:
    """Read up to ``limit`` sequenced leaves after the cursor, count them, raise the alerts
    they call for and move the cursor, all in one transaction.  Raises what the database
    raises (nothing is then written)."""
    with transaction(rt.sessions) as session:
        cursor = session.get(AccessMonitorRow, MONITOR, with_for_update=True)
        if cursor is None:
            cursor = AccessMonitorRow(name=MONITOR, position=0, updated_at=rt.clock.now())
            session.add(cursor)
        leaves = ledger.sequenced_after(session, cursor.position, limit)
        if not leaves:
            return MonitorReport()
        ids = [event_id for _, event_id, _ in leaves]
        rows = {r.id: r for r in session.scalars(select(EventRow).where(EventRow.id.in_(ids)))}
        state = _Pass(session, rt)
        _prefetch_purposes(state, list(rows.values()))
        for event_id in ids:
            row = rows.get(event_id)
            if row is not None:  # an event the log dropped in a recovery has no row
                _read(state, row)
        _store(state)
        cursor.position = leaves[-1][0] + 1
        cursor.updated_at = rt.clock.now()
        state.report.leaves = len(leaves)
        return state.report


def _read(state: _Pass, row: EventRow) -> None:
    details = json.loads(row.details)
    operation = reason = ""
    if row.type in ("access.allowed", "access.denied"):
        operation, reason = str(details.get("operation", "")), str(details.get("reason", ""))
    elif row.type == AlertRaised.event_type:
        return  # counted when it was raised
    state.totals[(row.type, operation, reason)] += 1
    if row.type == "access.denied" and row.subject is not None:
        _denied(state, row)
    elif row.type == "access.allowed":
        _retrieved(state, row)


def _denied(state: _Pass, row: EventRow) -> None:
    settings = state.rt.settings.alerts
    subject = cast(str, row.subject)
    window = window_of(row.at, settings.denial_window)
    burst = settings.denial_burst
    if state.add(_DENIALS, subject, window) == burst:
        _raise(state, "denial_burst", subject, window, count=burst, threshold=burst)


def _retrieved(state: _Pass, row: EventRow) -> None:
    settings = state.rt.settings.alerts
    hour = hour_of(row.at)
    count = state.add(_RETRIEVALS, row.actor, hour)
    threshold = state.thresholds.get((row.actor, hour))
    if threshold is None:
        threshold = lender_threshold(settings, hour, _history(state, row.actor, hour))
        state.thresholds[(row.actor, hour)] = threshold
    if count == threshold:
        _raise(state, "lender_baseline", row.actor, hour, count=count, threshold=threshold)
    purpose = _purpose(state, row)
    if not is_usual_hour(settings, purpose, row.at):
        day, local = local_day(settings, row.at), local_hour(settings, row.at)
        _raise(
            state, "off_hours", row.actor, day, count=1, threshold=0, purpose=purpose, hour=local
        )


def _history(state: _Pass, actor: str, hour: datetime) -> Baseline:
    # The lender's counted retrievals before ``hour`` (within the baseline), read from the
    # table and from this pass's counts not yet stored.
    since = hour - state.rt.settings.alerts.baseline_hours * HOUR
    total, first = state.session.execute(
        select(func.sum(AccessCountRow.count), func.min(AccessCountRow.bucket)).where(
            AccessCountRow.kind == _RETRIEVALS,
            AccessCountRow.key == actor,
            AccessCountRow.bucket >= since,
            AccessCountRow.bucket < hour,
        )
    ).one()
    total, first = int(total or 0), utc(first) if first is not None else None
    for (kind, key, bucket), count in state.counts.items():
        if kind == _RETRIEVALS and key == actor and since <= bucket < hour:
            stored = state.session.get(AccessCountRow, (kind, key, bucket))
            total += count - (stored.count if stored is not None else 0)
            first = bucket if first is None else min(first, bucket)
    return Baseline(total, first)


def _purpose(state: _Pass, row: EventRow) -> str | None:
    # The consent's purpose, from its ``consent.requested`` event (same borrower, same
    # object digest; looked up for the whole batch by _prefetch_purposes); None when the
    # access was not under a consent.
    if row.object is None or row.subject is None:
        return None
    return state.purposes.get(row.object)


def _prefetch_purposes(state: _Pass, rows: list[EventRow]) -> None:
    # One query for the batch's retrievals (by their borrowers, through the events'
    # subject index), instead of one per consent.
    subjects = sorted(
        {r.subject for r in rows if r.type == "access.allowed" and r.subject and r.object}
    )
    for start in range(0, len(subjects), 500):
        found = state.session.execute(
            select(EventRow.object, EventRow.details).where(
                EventRow.subject.in_(subjects[start : start + 500]),
                EventRow.type == "consent.requested",
            )
        )
        for obj, details in found:
            if obj is not None:
                state.purposes[obj] = str(json.loads(details).get("purpose"))


def _raise(
    state: _Pass,
    kind: AlertKind,
    subject: str,
    window: datetime,
    *,
    count: int,
    threshold: int,
    purpose: str | None = None,
    hour: int | None = None,
) -> None:
    session, rt = state.session, state.rt
    if session.get(AccessAlertRow, (kind, subject, window)) is not None:
        return  # raised already for this window
    now = rt.clock.now()
    details = AlertRaised(
        kind=kind, window=window, count=count, threshold=threshold, purpose=purpose, hour=hour
    )
    event = record_event(
        session,
        details,
        actor=rt.pseudonymizer.pseudonym("service", "monitor"),
        at=now,
        subject=subject,
    )
    session.add(
        AccessAlertRow(
            kind=kind,
            subject=subject,
            window=window,
            event_id=event.id,
            count=count,
            threshold=threshold,
            raised_at=now,
        )
    )
    session.flush()
    webhooks.enqueue_alert(
        session, rt, {**details.model_dump(mode="json"), "subject": subject, "event_id": event.id}
    )
    state.totals[(AlertRaised.event_type, kind, "")] += 1
    state.report.alerts[kind] = state.report.alerts.get(kind, 0) + 1


def _upsert(
    session: Session, table: Table, keys: list[str], values: list[dict[str, object]]
) -> None:
    # INSERT … ON CONFLICT DO UPDATE SET count = the new value (this pass holds the
    # cursor's lock, so no other pass changes these rows meanwhile).
    if not values:
        return
    dialect = session.connection().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=keys, set_={"count": statement.excluded.count}
        ),
        values,
    )


def _store(state: _Pass) -> None:
    session = state.session
    _upsert(
        session,
        _COUNTS,
        ["kind", "key", "bucket"],
        [
            {"kind": k, "key": key, "bucket": b, "count": state.counts[(k, key, b)]}
            for (k, key, b) in sorted(state.changed)
        ],
    )
    existing = {
        (r.type, r.operation, r.reason): r.count
        for r in session.scalars(select(EventTotalRow))
        if (r.type, r.operation, r.reason) in state.totals
    }
    _upsert(
        session,
        _TOTALS,
        ["type", "operation", "reason"],
        [
            {"type": t, "operation": o, "reason": r, "count": existing.get((t, o, r), 0) + n}
            for (t, o, r), n in sorted(state.totals.items())
        ],
    )


def prune_counts(session: Session, rt: Runtime) -> int:
    """Delete the counts older than any rule looks back (the baseline's hours, and a day);
    returns how many went."""
    settings = rt.settings.alerts
    keep = max(settings.baseline_hours * HOUR, 24 * HOUR)
    result = session.execute(delete(_COUNTS).where(_COUNTS.c.bucket < rt.clock.now() - keep))
    return int(getattr(result, "rowcount", 0) or 0)


def event_totals(session: Session) -> list[tuple[str, str, str, int]]:
    """Every (type, operation, reason, count) the monitor has counted (a few dozen rows:
    event types, operations and reasons are fixed sets)."""
    return [
        (r.type, r.operation, r.reason, int(r.count))
        for r in session.scalars(select(EventTotalRow))
    ]


def monitor_lag(session: Session) -> int:
    """Sequenced leaves the monitor has not read yet."""
    cursor = session.get(AccessMonitorRow, MONITOR)
    size = ledger.log_state(session)[0]
    return max(0, size - (cursor.position if cursor is not None else 0))
