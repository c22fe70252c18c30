"""The consent check, and the use of a consent for a retrieval.

The check (:func:`check`, :func:`check_consent`) is one indexed read and a pure evaluation
(``model.evaluate``).  Retrieval counts its use with one conditional UPDATE
(:func:`use_consent`): the row is changed only while it is still active and under its use
limit — the conditions a revocation, a pause or another use can change — so a revocation
that commits first is always seen, and no lock is held across Python work (on PostgreSQL
the UPDATE waits for a concurrent writer of the row and re-checks its conditions on the
committed row).  On PostgreSQL an allowed use is counted and its ``access.allowed`` event
recorded by one statement in autocommit (:func:`use_and_record`).  The reads and the count
are precompiled statements.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Protocol, cast

from sqlalchemy import (
    Integer,
    String,
    Table,
    bindparam,
    case,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from credit_commons.consent.access import (
    AccessAllowed,
    Denied,
    Lender,
    lender_actor,
    record_allowed,
)
from credit_commons.consent.errors import ConsentError, ConsentNotFound
from credit_commons.consent.model import (
    ConsentStatus,
    ConsentView,
    evaluate,
    scopes_map,
    use_window,
)
from credit_commons.consent.models import ConsentRow
from credit_commons.core.db import (
    DatabaseBusy,
    HotQuery,
    HotStatement,
    stored_datetime,
    transaction,
)
from credit_commons.core.db_autocommit import autocommit_sessions
from credit_commons.core.errors import UnavailableError
from credit_commons.events import EventSpec, event_rows, recorded_with
from credit_commons.runtime import Runtime

__all__ = [
    "ConsentRecord",
    "ConsentTerms",
    "UseOutcomeUnknown",
    "check",
    "check_consent",
    "denial",
    "read_consent",
    "record_use",
    "row_view",
    "use_and_record",
    "use_consent",
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
_READ = HotQuery(select(_TABLE).where(_TABLE.c.id == bindparam("consent_id")), ("consent_id",))
_COLUMNS = _TABLE.c
# One fetch counted, if the consent still allows it: the conditions are what can change
# after the consent was read (its status, its counters); its times, scopes, fetch type and
# frequency never change once it is requested, and are checked in Python beforehand.
_ACTIVE = literal_column(f"'{ConsentStatus.ACTIVE.value}'", String)
_ZERO, _ONE = literal_column("0", Integer), literal_column("1", Integer)
_ONETIME = (
    update(_TABLE)
    .where(_COLUMNS.id == bindparam("consent_id"), _COLUMNS.status == _ACTIVE, _COLUMNS.uses < _ONE)
    .values(uses=_COLUMNS.uses + _ONE, window=_ZERO, window_uses=_ONE, updated_at=bindparam("at"))
)
_USE_ONETIME = HotStatement(_ONETIME, ("consent_id", "at"))
# ``current`` is the window the use falls in: compared with the row's, and written.
_PERIODIC = (
    update(_TABLE)
    .where(
        _COLUMNS.id == bindparam("consent_id"),
        _COLUMNS.status == _ACTIVE,
        or_(
            _COLUMNS.window != bindparam("current"),
            _COLUMNS.window_uses < _COLUMNS.frequency_value,
        ),
    )
    .values(
        uses=_COLUMNS.uses + _ONE,
        window=bindparam("current"),
        window_uses=case(
            (_COLUMNS.window == bindparam("current"), _COLUMNS.window_uses + _ONE),
            else_=_ONE,
        ),
        updated_at=bindparam("at"),
    )
)
_USE_PERIODIC = HotStatement(_PERIODIC, ("consent_id", "current", "at"))
#: Conditional UPDATEs tried before a use is refused as a change made meanwhile.
_ATTEMPTS = 3


# PostgreSQL only: the use counted and its access.allowed event recorded in one statement
# (events.recorded_with), or no row when nothing was counted.
_RECORDED_ONETIME = recorded_with(_ONETIME.returning(_COLUMNS.id))
_RECORDED_PERIODIC = recorded_with(_PERIODIC.returning(_COLUMNS.id))


def read_consent(session: Session, consent_id: str) -> ConsentRecord | None:
    """The consent's row (a named tuple; datetimes as stored), not locked."""
    row: ConsentRecord | None = _READ.first(session, consent_id=consent_id)
    return row


def use_consent(
    session: Session, row: ConsentTerms, type_name: str, claims: frozenset[str], now: datetime
) -> None:
    """Count one fetch of ``claims`` of a ``type_name`` credential under consent ``row``
    (read earlier in another unit of work) at ``now``, if the consent as it is now permits
    it — what :func:`check_consent` of the current row would say, followed by the count
    (``model.next_use``) — by one conditional UPDATE, in the caller's transaction.

    The consent's times, scopes, fetch type and frequency never change once requested:
    they are checked on ``row``.  Its status and use counters can: the UPDATE changes the
    row only while it is ``ACTIVE`` and under its use limit (for a periodic consent, a new
    window or one with uses left), so a revocation, pause or use committed first is seen,
    and two concurrent uses of the last fetch cannot both count.  When it changes nothing,
    the current row is read and checked for the precise refusal.

    Raises the :class:`ConsentError` of the current row (``ConsentNotFound`` when it is
    gone), or :class:`DatabaseBusy` when the row kept changing between the UPDATE and the
    read.
    """
    view = row_view(row)
    for _ in range(_ATTEMPTS):
        if _terms_allow(view, type_name, claims, now) and _count_use(session, row, view, now):
            return
        current = read_consent(session, row.id)
        check_consent(current, type_name, claims, now)  # raises the refusal
        # Allowed now: the row changed after the UPDATE (a pause lifted, a use undone).
        view = row_view(cast(ConsentTerms, current))
    raise DatabaseBusy("serialization_failure")


def use_and_record(
    rt: Runtime,
    lender: Lender,
    row: ConsentRecord,
    *,
    type_name: str,
    claims: frozenset[str],
    operation: str,
) -> str:
    """Count one use of consent ``row`` (read earlier, in another unit of work) as
    :func:`use_consent` does and record ``access.allowed`` for it (:func:`record_use`), in
    a unit of work of its own; returns the event id.

    On PostgreSQL an allowed use is one statement in autocommit — the conditional UPDATE,
    the event and its log entry written together or not at all — instead of five (BEGIN,
    UPDATE, two INSERTs, COMMIT).  When that statement counts nothing (the consent changed
    meanwhile, or its terms do not allow the use), and on SQLite, the use goes through
    :func:`use_consent` and :func:`record_use` in one transaction, which raise the same
    refusals.  Raises what :func:`use_consent` raises, and :class:`UseOutcomeUnknown` when
    the connection was lost under the PostgreSQL statement.
    """
    now = rt.clock.now()
    if rt.engine.dialect.name == "postgresql":
        view = row_view(row)
        if _terms_allow(view, type_name, claims, now):
            spec = EventSpec(
                AccessAllowed(operation=operation),
                actor=lender_actor(rt, lender.client_id),
                at=now,
                subject=row.principal,
                object=rt.objects.digest("consent", row.id),
            )
            rows = event_rows([spec])
            values = {f"event_{k}": v for k, v in rows.events[0].items()}
            values.update(consent_id=row.id, at=now, entry=rows.entries[0]["entry"])
            if view.fetch_type == "ONETIME":
                statement = _RECORDED_ONETIME
            else:
                statement, values["current"] = _RECORDED_PERIODIC, use_window(view, now)
            try:
                with transaction(autocommit_sessions(rt.engine)) as session:
                    if statement.first(session, **values) is not None:
                        return rows.recorded[0].id
            except DBAPIError as e:
                if e.connection_invalidated:
                    # The statement is its own COMMIT: lost under it, the use and its event
                    # may have been written (together), so this is not "busy, nothing was
                    # written, retry" (core.db.busy_error) but an unknown outcome.
                    raise UseOutcomeUnknown(rows.recorded[0].id) from e
                raise
    with transaction(rt.sessions) as session:
        use_consent(session, row, type_name, claims, now)
        return record_use(session, rt, lender, row, operation)


class UseOutcomeUnknown(UnavailableError):
    """The connection to PostgreSQL was lost under the statement that counts a use and
    records it: they may have been written, together.  Not a
    :class:`~credit_commons.core.db.DatabaseBusy` (whose answer says nothing was written,
    retry): a 503 of its own naming the access event the use would have recorded, so the
    lender can look for it (its receipt, the borrower's history) before asking again — a
    one-time consent may have been used."""

    code = "consent.use_outcome_unknown"
    title = "Consent use outcome unknown"

    def __init__(self, event_id: str) -> None:
        super().__init__(
            "the connection to the database was lost while this use was being recorded: "
            f"it may have been counted, with its access event {event_id}",
            hint="look the event up (its receipt) before retrieving again; a one-time "
            "consent may have been used",
            extra={"event_id": event_id},
        )


def _terms_allow(view: ConsentView, type_name: str, claims: frozenset[str], now: datetime) -> bool:
    # The checks of model.evaluate over what never changes: the validity window and scope.
    granted = view.scopes.get(type_name)
    return view.starts_at <= now < view.expires_at and granted is not None and claims <= granted


def _count_use(session: Session, row: ConsentTerms, view: ConsentView, now: datetime) -> bool:
    # model.next_use as one conditional UPDATE; whether it counted.
    if view.fetch_type == "ONETIME":
        return _USE_ONETIME.execute(session, consent_id=row.id, at=now) == 1
    counted = _USE_PERIODIC.execute(
        session, consent_id=row.id, current=use_window(view, now), at=now
    )
    return counted == 1


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
