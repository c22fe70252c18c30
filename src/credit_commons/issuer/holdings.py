"""What the issuer holds for a holder, read on consent's retrieval path: the holder's
SD-JWT credentials of a type, newest first, and the current Token Status List entry of one;
and for the verifier's pipeline, an entry's status with whether its subject was erased.

The issuer's service for other domains (consent asks here instead of reading the issuer's
tables).  Both reads are precompiled statements (``HotQuery``) because gated retrieval is a
measured hot path (``bench/consent.py``): :func:`token_status` reads the one byte of the list
that holds the entry (``formats.status_list.entry_byte``) instead of the 32 KiB list, and is
tested against :func:`credit_commons.issuer.status.get_status`, the reference path.
:func:`entry_state` is the same read with the tombstone of the credential at the entry
(``issuer.erasure.subject_erased``) in the same statement, for steps 4 and 9 of the
verifier's pipeline (``bench/verifier.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from credit_commons.core.db import HotQuery, stored_datetime
from credit_commons.formats.status_list import TokenStatus, entry_byte, entry_in_byte
from credit_commons.issuer.models import CredentialRow, StatusListRow
from credit_commons.runtime import Runtime

__all__ = [
    "EntryState",
    "HeldCredential",
    "entry_state",
    "issued_text",
    "sd_jwt_credentials",
    "subject_at_entry",
    "token_status",
]

#: The width of the issuer's Token Status List entries (VALID, INVALID, SUSPENDED; see
#: ``issuer/status.py``).  A list of another width is never one of ours to share from.
_TOKEN_BITS = 2

_LISTS = StatusListRow.__table__.c
_STATUS_BYTE = HotQuery(
    select(_LISTS.bits, func.substr(_LISTS.data, bindparam("position"), 1)).where(
        _LISTS.id == bindparam("list_id"), _LISTS.kind == "token"
    ),
    ("list_id", "position"),
)
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
_NEWEST = HotQuery(
    select(
        _CREDENTIALS.id,
        _CREDENTIALS.sealed,
        _CREDENTIALS.expires_at,
        _CREDENTIALS.status_list_id,
        _CREDENTIALS.status_index,
    )
    .where(
        _CREDENTIALS.subject_token == bindparam("token"),
        _CREDENTIALS.type_name == bindparam("type_name"),
        _CREDENTIALS.format == "dc+sd-jwt",
    )
    .order_by(_CREDENTIALS.issued_at.desc()),
    ("token", "type_name"),
)


@dataclass(frozen=True, slots=True)
class HeldCredential:
    """One stored SD-JWT VC: its id, the vault-sealed text (open it with the vault, purpose
    ``credentials``, record ``id``), its expiry and its Token Status List entry."""

    id: str
    sealed: bytes
    expires_at: datetime
    status_list_id: str
    status_index: int


def sd_jwt_credentials(
    session: Session, subject_token: str, type_name: str
) -> list[HeldCredential]:
    """The ``dc+sd-jwt`` credentials of ``type_name`` issued to ``subject_token``, newest
    first (expired and revoked ones included).  Raises nothing of its own."""
    return [
        HeldCredential(
            row.id,
            bytes(row.sealed),
            stored_datetime(row.expires_at),
            row.status_list_id,
            row.status_index,
        )
        for row in _NEWEST.records(session, token=subject_token, type_name=type_name)
    ]


def token_status(session: Session, list_id: str, index: int) -> TokenStatus:
    """The current status of entry ``index`` of the issuer's Token Status List ``list_id``.

    ``INVALID`` — never shareable — when there is no such token list, it is not one of 2-bit
    entries, or ``index`` lies outside it.  Raises nothing of its own.
    """
    if index < 0:
        return TokenStatus.INVALID
    position = entry_byte(index, _TOKEN_BITS) + 1  # SQL substr counts from 1
    rows = _STATUS_BYTE.rows(session, list_id=list_id, position=position)
    if not rows or rows[0][0] != _TOKEN_BITS or len(rows[0][1]) != 1:
        return TokenStatus.INVALID
    return TokenStatus(entry_in_byte(bytes(rows[0][1])[0], index, _TOKEN_BITS))


@dataclass(frozen=True, slots=True)
class EntryState:
    """An entry of the issuer's Token Status Lists as the verifier reads it: its status and
    whether the credential issued at it belongs to a subject since erased."""

    status: TokenStatus
    erased: bool


def entry_state(session: Session, list_id: str, index: int) -> EntryState | None:
    """Entry ``index`` of the issuer's Token Status List ``list_id`` in one statement: what
    :func:`token_status` reads (``INVALID`` for an index outside the list), and whether the
    credential at the entry lost its identity token (:func:`~credit_commons.issuer.erasure.
    subject_erased`; no credential at the entry is not erased).  ``None`` when the issuer has
    no token list ``list_id``.  Raises nothing of its own.
    """
    position = entry_byte(index, _TOKEN_BITS) + 1 if index >= 0 else 0
    rows = _ENTRY.rows(session, list_id=list_id, position=position, index=index)
    if not rows:
        return None
    bits, byte, erased = rows[0]
    if bits != _TOKEN_BITS or index < 0 or len(byte) != 1:
        return EntryState(TokenStatus.INVALID, bool(erased))
    return EntryState(TokenStatus(entry_in_byte(bytes(byte)[0], index, _TOKEN_BITS)), bool(erased))


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
