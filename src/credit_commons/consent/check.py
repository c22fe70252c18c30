"""The consent check, and the use of a consent for a retrieval.

The check (:func:`check`, :func:`check_consent`) is one indexed read and a pure evaluation
(``model.evaluate``).  Retrieval locks the consent row (:func:`locked_for_use`, ``FOR
UPDATE``), so a revocation that commits first is always seen, and counts the use in the
same transaction (:func:`mark_used`); the reads and the count are precompiled statements.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Protocol, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from credit_commons.consent.access import Denied, Lender, lender_actor, record_allowed
from credit_commons.consent.errors import ConsentError, ConsentNotFound
from credit_commons.consent.model import ConsentView, evaluate, next_use, scopes_map
from credit_commons.consent.models import ConsentRow
from credit_commons.core.db import HotQuery, HotStatement, stored_datetime
from credit_commons.runtime import Runtime

__all__ = [
    "ConsentRecord",
    "ConsentTerms",
    "check",
    "check_consent",
    "denial",
    "locked_for_use",
    "mark_used",
    "read_consent",
    "record_use",
    "row_view",
]


class ConsentTerms(Protocol):
    """What the check reads of a consent: a :class:`ConsentRow`, or the record of a
    precompiled read of its columns (datetimes as stored: SQLite's text, a driver's
    datetime)."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def starts_at(self) -> datetime | str: ...
    @property
    def expires_at(self) -> datetime | str: ...
    @property
    def fetch_type(self) -> str: ...
    @property
    def frequency_unit(self) -> str: ...
    @property
    def frequency_value(self) -> int: ...
    @property
    def scopes(self) -> str: ...
    @property
    def uses(self) -> int: ...
    @property
    def window(self) -> int: ...
    @property
    def window_uses(self) -> int: ...


class ConsentRecord(ConsentTerms, Protocol):
    """A whole consent as retrieval reads it (:func:`read_consent`, :func:`locked_for_use`):
    the terms and whose it is, its mode and data life."""

    @property
    def lender_client_id(self) -> str: ...
    @property
    def principal(self) -> str: ...
    @property
    def principal_token(self) -> str: ...
    @property
    def mode(self) -> str: ...
    @property
    def data_life_unit(self) -> str: ...
    @property
    def data_life_value(self) -> int: ...


def row_view(row: ConsentTerms) -> ConsentView:
    """The pure model's view of a consent row (an ORM row or a named tuple)."""
    return ConsentView(
        status=row.status,
        starts_at=stored_datetime(row.starts_at),
        expires_at=stored_datetime(row.expires_at),
        fetch_type=row.fetch_type,
        frequency_unit=row.frequency_unit,
        frequency_value=row.frequency_value,
        scopes=scopes_map(json.loads(row.scopes)),
        uses=row.uses,
        window=row.window,
        window_uses=row.window_uses,
    )


def check_consent(
    row: ConsentTerms | None, type_name: str, claims: frozenset[str], now: datetime
) -> None:
    """Evaluate one consent row; raises a :class:`ConsentError` (``ConsentNotFound`` for
    ``None``)."""
    if row is None:
        raise ConsentNotFound()
    evaluate(row_view(row), type_name, claims, now)


_CHECK_COLUMNS = (
    ConsentRow.id,
    ConsentRow.status,
    ConsentRow.starts_at,
    ConsentRow.expires_at,
    ConsentRow.fetch_type,
    ConsentRow.frequency_unit,
    ConsentRow.frequency_value,
    ConsentRow.scopes,
    ConsentRow.uses,
    ConsentRow.window,
    ConsentRow.window_uses,
)
_CHECK = (
    select(*_CHECK_COLUMNS)
    .where(
        ConsentRow.lender_client_id == bindparam("lender"),
        ConsentRow.principal == bindparam("principal"),
    )
    .order_by(ConsentRow.id.desc())
    .limit(16)
)
_CHECK_ROWS = HotQuery(_CHECK, ("lender", "principal"))


def check(
    session: Session,
    *,
    lender: str,
    principal: str,
    type_name: str,
    claims: frozenset[str],
    now: datetime,
) -> str:
    """The consent check: the id of the live consent of ``lender`` for ``principal`` (a
    pseudonym) that grants ``claims`` of ``type_name`` now.  One read on the
    ``(lender, principal)`` index, whatever the number of consents stored.

    Raises the most telling :class:`ConsentError` of the pair's consents when none grants
    it (``ConsentNotFound`` when there are none).
    """
    failure: ConsentError = ConsentNotFound()
    for row in _CHECK_ROWS.records(session, lender=lender, principal=principal):
        try:
            check_consent(row, type_name, claims, now)
        except ConsentError as e:
            if isinstance(failure, ConsentNotFound):
                failure = e
            continue
        return str(row.id)
    raise failure


_TABLE = cast("Table", ConsentRow.__table__)
_LOCKED = HotQuery(
    select(_TABLE).where(_TABLE.c.id == bindparam("consent_id")).with_for_update(),
    ("consent_id",),
)
_READ = HotQuery(select(_TABLE).where(_TABLE.c.id == bindparam("consent_id")), ("consent_id",))
# The row is not in the session (it was read as a tuple): a precompiled Core update.
_MARK_USED = HotStatement(
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("consent_id"))
    .values(
        uses=bindparam("uses"),
        window=bindparam("window"),
        window_uses=bindparam("window_uses"),
        updated_at=bindparam("updated_at"),
    ),
    ("consent_id", "uses", "window", "window_uses", "updated_at"),
)


def locked_for_use(session: Session, consent_id: str) -> ConsentRecord | None:
    """The consent's row (a named tuple; datetimes as stored), locked until the
    transaction ends (``FOR UPDATE``; SQLite's writer holds the whole database)."""
    row: ConsentRecord | None = _LOCKED.first(session, consent_id=consent_id)
    return row


def read_consent(session: Session, consent_id: str) -> ConsentRecord | None:
    """The consent's row (a named tuple; datetimes as stored), not locked."""
    row: ConsentRecord | None = _READ.first(session, consent_id=consent_id)
    return row


def mark_used(session: Session, row: ConsentTerms, now: datetime) -> None:
    """Count one fetch of ``row`` (after a successful check, in the same transaction)."""
    window, window_uses = next_use(row_view(row), now)
    _MARK_USED.execute(
        session,
        consent_id=row.id,
        uses=row.uses + 1,
        window=window,
        window_uses=window_uses,
        updated_at=now,
    )


def denial(
    rt: Runtime,
    lender: Lender,
    row: ConsentRecord | None,
    *,
    consent_id: str,
    operation: str,
    reason: str,
) -> Denied:
    """The :class:`Denied` error for a refused access (recorded by the app's handler).

    The subject is the consent's borrower even when another lender tried it: the attempt
    was on their data, so it belongs in their access history."""
    return Denied(
        operation=operation,
        reason=reason,
        actor=lender_actor(rt, lender.client_id),
        subject=row.principal if row is not None else None,
        object=rt.objects.digest("consent", consent_id),
    )


def record_use(
    session: Session, rt: Runtime, lender: Lender, row: ConsentRecord, operation: str
) -> str:
    """Record ``access.allowed`` for a use of ``row``; returns the event id."""
    return record_allowed(
        session,
        rt,
        actor=lender_actor(rt, lender.client_id),
        operation=operation,
        subject=row.principal,
        object=rt.objects.digest("consent", row.id),
    ).id
