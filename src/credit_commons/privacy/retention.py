"""Retention: delete what the platform no longer needs, per table, on a schedule (seed 002 §11).

* ``access_tokens``: expired for longer than ``COMMONS_RETENTION_ACCESS_TOKENS_DAYS`` (1);
* ``dsr_requests``: expired (or fulfilled and expired) for longer than
  ``COMMONS_RETENTION_DSR_REQUESTS_DAYS`` (30);
* ``delegations``: revoked or expired for longer than ``COMMONS_RETENTION_DELEGATIONS_DAYS``
  (365);
* ``access_denial_counts``: hourly counts of refusals that named nobody
  (``consent.denial_counts``), older than ``COMMONS_RETENTION_DENIAL_COUNTS_DAYS`` (90).

Events and log entries are never deleted: they hold no personal data and the log's
promise is that nothing disappears.  Each run records a ``retention.run`` event with the
counts.  ``commons privacy retention run`` runs it now; the log worker runs it hourly.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from credit_commons.consent import prune_denial_counts
from credit_commons.events import EventDetails, record_event
from credit_commons.identity import prune_access_tokens, prune_delegations
from credit_commons.privacy.models import DsrRequestRow
from credit_commons.runtime import Runtime

__all__ = ["RetentionRun", "run_retention"]


class RetentionRun(EventDetails, event_type="retention.run"):
    """Rows deleted by one retention run, per table."""

    access_tokens: int
    dsr_requests: int
    delegations: int
    access_denial_counts: int


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def run_retention(session: Session, rt: Runtime) -> dict[str, int]:
    """Delete everything past its retention window; returns the counts per table."""
    now = rt.clock.now()
    s = rt.settings
    counts = {
        "access_tokens": prune_access_tokens(
            session, now - timedelta(days=s.retention_access_tokens_days)
        ),
        "dsr_requests": _count(
            session.execute(
                delete(DsrRequestRow).where(
                    DsrRequestRow.expires_at < now - timedelta(days=s.retention_dsr_requests_days)
                )
            )
        ),
        "delegations": prune_delegations(
            session, now - timedelta(days=s.retention_delegations_days)
        ),
        "access_denial_counts": prune_denial_counts(
            session, now - timedelta(days=s.retention_denial_counts_days)
        ),
    }
    record_event(
        session,
        RetentionRun(**counts),
        actor=rt.pseudonymizer.pseudonym("operator", "retention"),
        at=now,
    )
    return counts
