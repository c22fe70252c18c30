"""The streams the publisher refuses to publish to, kept in the database
(``federation_refusals``) so the process that serves ``/metrics`` sees what the worker's
publisher found (docs/federation.md, "One NATS account per platform")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from credit_commons.federation.models import FederationRefusalRow
from credit_commons.federation.ownership import Refusal

__all__ = ["clear_refusals", "record_refusals", "refusals"]

_OTHER_CHARS = 256  # the column's length


def record_refusals(session: Session, found: Sequence[Refusal], now: datetime) -> None:
    """Replace the recorded refusals by ``found`` (the last connection's)."""
    clear_refusals(session)
    session.add_all(
        FederationRefusalRow(
            stream=r.stream, other=r.other[:_OTHER_CHARS], position=r.position, detected_at=now
        )
        for r in found
    )


def clear_refusals(session: Session) -> None:
    """Forget every refusal: the publisher connected to streams that are all its own."""
    session.execute(delete(FederationRefusalRow))


def refusals(session: Session) -> list[Refusal]:
    """The recorded refusals, by stream."""
    rows = session.scalars(select(FederationRefusalRow).order_by(FederationRefusalRow.stream))
    return [Refusal(row.stream, row.other, row.position) for row in rows]
