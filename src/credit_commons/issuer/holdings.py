"""What the issuer holds for a holder, read on consent's retrieval path: the holder's
SD-JWT credentials of a type, newest first, each with the current status of its Token
Status List entry; and for the verifier's pipeline, an entry's status with whether its
subject was erased.

The issuer's service for other domains (consent asks here instead of reading the issuer's
tables).  Each credential is read joined to the one byte of its list that holds its entry
(``formats.status_list.entry_byte``) instead of the 32 KiB list, one statement however many
credentials there are: :func:`join_held_credentials` joins the credentials and their lists
onto a caller's table, which gated retrieval — a measured hot path (``bench/consent.py``) —
does in its own precompiled read of the consent (``consent/retrieval.py``), and
:func:`sd_jwt_credentials` reads them on its own; both are tested against
:func:`credit_commons.issuer.status.get_status`, the reference path.  :func:`entry_state`
reads an entry's byte with the tombstone of the credential at the entry
(``issuer.erasure.subject_erased``) in the same statement, a precompiled one, for steps 4
and 9 of the verifier's pipeline (``bench/verifier.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Join, and_, bindparam, func, select
from sqlalchemy.orm import Session

from credit_commons.core.db import HotQuery, stored_datetime
from credit_commons.formats.status_list import TokenStatus, entry_byte, entry_in_byte
from credit_commons.issuer.models import CredentialRow, StatusListRow
from credit_commons.runtime import Runtime

__all__ = [
    "HELD",
    "EntryState",
    "HeldColumns",
    "HeldCredential",
    "entry_state",
    "held",
    "issued_text",
    "join_held_credentials",
    "sd_jwt_credentials",
    "subject_at_entry",
]

#: The width of the issuer's Token Status List entries (VALID, INVALID, SUSPENDED; see
#: ``issuer/status.py``).  A list of another width is never one of ours to share from.
_TOKEN_BITS = 2

_LISTS = StatusListRow.__table__.c
_CREDENTIALS = CredentialRow.__table__.c
# The byte of the entry and, from the credential registry, whether the credential issued at
# the entry lost its identity token (NULL when no credential holds the entry).
_ENTRY = HotQuery(
    select(
        _LISTS.bits,
        func.substr(_LISTS.data, bindparam("position"), 1).label("entry_byte"),
        select(_CREDENTIALS.subject_token.is_(None))
        .where(
            _CREDENTIALS.status_list_id == _LISTS.id,
            _CREDENTIALS.status_index == bindparam("index"),
        )
        .limit(1)
        .scalar_subquery()
        .label("erased"),
    ).where(_LISTS.id == bindparam("list_id"), _LISTS.kind == "token"),
    ("list_id", "position", "index"),
)
# Each credential with its list's entry width and the byte that holds its entry (NULLs
# when its list is not one of the issuer's token lists); SQL substr counts from 1.
_HELD_COLUMNS = (
    _CREDENTIALS.id,
    _CREDENTIALS.sealed,
    _CREDENTIALS.expires_at,
    _CREDENTIALS.status_list_id,
    _CREDENTIALS.status_index,
    _LISTS.bits,
    func.substr(_LISTS.data, _CREDENTIALS.status_index * _TOKEN_BITS // 8 + 1, 1).label(
        "entry_byte"
    ),
)
# A credential's list, when it is one of the issuer's token lists.
_ITS_LIST = and_(_LISTS.id == _CREDENTIALS.status_list_id, _LISTS.kind == "token")
# Each credential with its list (sd_jwt_credentials: not on a hot path since retrieval
# joins the credentials into its own precompiled read, so a plain statement).
_HELD_FROM = CredentialRow.__table__.outerjoin(StatusListRow.__table__, _ITS_LIST)


@dataclass(frozen=True, slots=True)
class HeldColumns:
    """The columns of :func:`join_held_credentials`' join that a caller filters, orders
    and selects by."""

    subject_token: ColumnElement[Any]
    type_name: ColumnElement[Any]
    #: To order by, newest first.
    issued_at: ColumnElement[Any]
    #: The columns :func:`held` takes, in its order: ``id``, ``sealed``, ``expires_at``,
    #: ``status_list_id``, ``status_index``, ``bits``, ``entry_byte``.
    held: tuple[ColumnElement[Any], ...]


HELD = HeldColumns(
    _CREDENTIALS.subject_token, _CREDENTIALS.type_name, _CREDENTIALS.issued_at, _HELD_COLUMNS
)


def join_held_credentials(left: FromClause, on: ColumnElement[bool]) -> Join:
    """``left`` LEFT JOINed with every stored ``dc+sd-jwt`` credential that meets ``on`` (a
    condition on :data:`HELD`'s columns) and its list's byte, as :func:`sd_jwt_credentials`
    reads them, for a caller that reads them in a statement of its own (consent's
    retrieval reads the consent and the borrower's credentials in one).  The tables are
    joined directly, not through a subquery: SQLite (3.40) does not flatten a subquery that
    is itself a join into the right side of a LEFT JOIN — it would copy every credential of
    the platform at each read — and ``on`` should name ``subject_token``, whose index the
    join then uses.
    """
    return left.outerjoin(
        CredentialRow.__table__, and_(on, _CREDENTIALS.format == "dc+sd-jwt")
    ).outerjoin(StatusListRow.__table__, _ITS_LIST)


@dataclass(frozen=True, slots=True)
class HeldCredential:
    """One stored SD-JWT VC: its id, the vault-sealed text (open it with the vault, purpose
    ``credentials``, record ``id``), its expiry, its Token Status List entry and that
    entry's status when it was read."""

    id: str
    sealed: bytes
    expires_at: datetime
    status_list_id: str
    status_index: int
    status: TokenStatus


def sd_jwt_credentials(
    session: Session, subject_token: str, type_name: str
) -> list[HeldCredential]:
    """The ``dc+sd-jwt`` credentials of ``type_name`` issued to ``subject_token``, newest
    first (expired and revoked ones included), each with the current status of its entry —
    ``INVALID``, never shareable, when its list is not one of the issuer's token lists of
    2-bit entries or the entry lies outside it.  One statement.  Raises nothing of its own.
    """
    query = (
        select(*_HELD_COLUMNS)
        .select_from(_HELD_FROM)
        .where(
            _CREDENTIALS.subject_token == subject_token,
            _CREDENTIALS.type_name == type_name,
            _CREDENTIALS.format == "dc+sd-jwt",
        )
        .order_by(_CREDENTIALS.issued_at.desc())
    )
    return [held(tuple(row)) for row in session.execute(query)]


def held(columns: tuple[Any, ...]) -> HeldCredential:
    """The credential of a row of :func:`join_held_credentials` — its columns ``id``,
    ``sealed``, ``expires_at``, ``status_list_id``, ``status_index``, ``bits`` and
    ``entry_byte`` in that order, as a precompiled read returns them — with its entry's
    status.  Raises nothing of its own."""
    credential_id, sealed, expires_at, status_list_id, status_index, bits, byte = columns
    return HeldCredential(
        credential_id,
        bytes(sealed),
        stored_datetime(expires_at),
        status_list_id,
        status_index,
        _entry_status(status_index, bits, byte),
    )


def _entry_status(index: int, bits: int | None, byte: bytes | None) -> TokenStatus:
    # Entry ``index`` of a list of ``bits``-bit entries from the byte holding it (TSL §4.1).
    if index < 0 or bits != _TOKEN_BITS or byte is None or len(byte) != 1:
        return TokenStatus.INVALID
    return TokenStatus(entry_in_byte(bytes(byte)[0], index, _TOKEN_BITS))


@dataclass(frozen=True, slots=True)
class EntryState:
    """An entry of the issuer's Token Status Lists as the verifier reads it: its status and
    whether the credential issued at it belongs to a subject since erased."""

    status: TokenStatus
    erased: bool


def entry_state(session: Session, list_id: str, index: int) -> EntryState | None:
    """Entry ``index`` of the issuer's Token Status List ``list_id`` in one statement: its
    status (``INVALID`` for an index outside the list), and whether the
    credential at the entry lost its identity token (:func:`~credit_commons.issuer.erasure.
    subject_erased`; no credential at the entry is not erased).  ``None`` when the issuer has
    no token list ``list_id``.  Raises nothing of its own.
    """
    position = entry_byte(index, _TOKEN_BITS) + 1 if index >= 0 else 0
    rows = _ENTRY.rows(session, list_id=list_id, position=position, index=index)
    if not rows:
        return None
    bits, byte, erased = rows[0]
    return EntryState(_entry_status(index, bits, byte), bool(erased))


def issued_text(session: Session, rt: Runtime, credential_id: str) -> str | None:
    """The text of the credential ``credential_id`` issued (opened from the vault, where it
    is sealed for its subject), or ``None`` when there is none or its subject was erased.
    Raises what the vault raises for an envelope that does not open."""
    row = session.get(CredentialRow, credential_id)
    if row is None or row.subject_token is None:
        return None
    return rt.vault.open(
        session, bytes(row.sealed), subject=row.subject_token, purpose="credentials", record=row.id
    ).decode()


def subject_at_entry(session: Session, list_id: str, index: int) -> str | None:
    """The identity token of the subject of the credential issued at entry ``index`` of the
    issuer's status list ``list_id`` — how issue 19's capability step finds whom a
    reputation member's KYC credential (registered by its status reference) was issued to.
    ``None`` when no credential holds the entry or its subject was erased.  Raises nothing
    of its own."""
    query = (
        select(CredentialRow.subject_token)
        .where(CredentialRow.status_list_id == list_id, CredentialRow.status_index == index)
        .limit(1)
    )
    return session.scalars(query).first()
