"""The registry of issued credentials after their issuance: reading it and changing a
credential's status (issue 5, item 3; the issuer desk of issue 17).

``list_credentials`` gives a subject's registry metadata; ``credential_state`` and
``credential_states`` add each credential's current status as its list entry holds it, and
only read.  ``change_status`` revokes, suspends or reinstates a credential by setting its
entry in the status list it was issued with (:mod:`~credit_commons.issuer.status`) and
records ``credential.status_changed``.  Issuing is :mod:`~credit_commons.issuer.credentials`;
the registry keeps no credential text, only its hash and metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.errors import NotFoundError
from credit_commons.events import EventDetails, Token, record_event
from credit_commons.formats.status_list import TokenStatus
from credit_commons.identity import Principal, actor_of, subject_of
from credit_commons.issuer import status
from credit_commons.issuer.credentials import SD_JWT_VC
from credit_commons.issuer.models import CredentialRow
from credit_commons.issuer.schemas import CredentialRecord, StatusChanged
from credit_commons.runtime import Runtime

__all__ = [
    "CredentialChanged",
    "CredentialState",
    "StatusAction",
    "change_status",
    "credential_state",
    "credential_states",
    "list_credentials",
]


class CredentialChanged(EventDetails, event_type="credential.status_changed"):
    """A credential was revoked, suspended or reinstated."""

    action: Token


class StatusAction(StrEnum):
    """What an issuer can do to an issued credential."""

    REVOKE = "revoke"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"


_TARGET = {
    StatusAction.REVOKE: TokenStatus.INVALID,
    StatusAction.SUSPEND: TokenStatus.SUSPENDED,
    StatusAction.REINSTATE: TokenStatus.VALID,
}
# The statuses each action applies to.  Revocation is final (TSL "Status Types": 0x01
# INVALID is a revocation, 0x02 SUSPENDED "is reversible"; W3C Bitstring Status List: the
# revocation purpose cannot be undone), so nothing leads out of INVALID; only a suspended
# credential is reinstated, and only a valid one suspended.
_FROM = {
    StatusAction.REVOKE: frozenset({TokenStatus.VALID, TokenStatus.SUSPENDED}),
    StatusAction.SUSPEND: frozenset({TokenStatus.VALID}),
    StatusAction.REINSTATE: frozenset({TokenStatus.SUSPENDED}),
}


def _ref(row: CredentialRow) -> status.StatusRef:
    # A credential's entry: a Token Status List's for an SD-JWT VC, a bitstring list's for
    # a W3C credential (vc+jwt, and the jwt_vc_json rows issued before VCDM 2.0).
    kind = status.StatusKind.TOKEN if row.format == SD_JWT_VC else status.StatusKind.BITSTRING
    return status.StatusRef(row.status_list_id, row.status_index, kind)


def list_credentials(
    session: Session, rt: Runtime, principal: Principal, subject_token: str
) -> list[CredentialRecord]:
    """Registry metadata of a subject's credentials (administrators/issuers only)."""
    del rt
    if not principal.is_admin:
        raise NotFoundError("no such resource")
    rows = session.scalars(
        select(CredentialRow)
        .where(CredentialRow.subject_token == subject_token)
        .order_by(CredentialRow.id)
    )
    return [
        CredentialRecord(
            credential_id=r.id,
            type=r.type_name,
            format=r.format,
            issued_at=utc(r.issued_at).isoformat(),
            expires_at=utc(r.expires_at).isoformat(),
        )
        for r in rows
    ]


def change_status(
    session: Session, rt: Runtime, principal: Principal, credential_id: str, action: StatusAction
) -> StatusChanged:
    """Revoke, suspend or reinstate a credential (administrators/issuers only).

    Revoke applies to a valid or suspended credential, suspend to a valid one, reinstate
    to a suspended one; a refused change writes nothing.  Raises :class:`NotFoundError`,
    ``StatusTransitionInvalid`` (409: from revoked, or not in a state the action applies
    to) and :class:`ValidationError` (suspending a credential whose bitstring list can
    only express revocation).
    """
    if not principal.is_admin:
        raise NotFoundError("no such resource")
    row = session.get(CredentialRow, credential_id)
    if row is None:
        raise NotFoundError("no such credential")
    status.set_status(session, rt, _ref(row), _TARGET[action], allowed_from=_FROM[action])
    record_event(
        session,
        CredentialChanged(action=action.value),
        actor=actor_of(rt, principal),
        at=rt.clock.now(),
        # An erased subject's credentials keep no identity token (privacy/erasure.py).
        subject=subject_of(rt, row.subject_token) if row.subject_token else None,
        object=rt.objects.digest("credential", credential_id),
    )
    return StatusChanged(credential_id=credential_id, status=_TARGET[action].name.lower())


@dataclass(frozen=True)
class CredentialState:
    """An issued credential as the issuer desk sees it: the registry metadata and the
    current status of its entry (``valid``, ``invalid`` — revoked — or ``suspended``, the
    names :class:`StatusChanged` uses), never the credential itself."""

    credential_id: str
    type: str
    format: str
    subject_token: str | None
    status: str
    issued_at: datetime
    expires_at: datetime


def _state(session: Session, row: CredentialRow) -> CredentialState:
    current = status.get_status(session, _ref(row))
    return CredentialState(
        credential_id=row.id,
        type=row.type_name,
        format=row.format,
        subject_token=row.subject_token,
        status=TokenStatus(current).name.lower(),
        issued_at=utc(row.issued_at),
        expires_at=utc(row.expires_at),
    )


def credential_state(
    session: Session, rt: Runtime, principal: Principal, credential_id: str
) -> CredentialState:
    """One credential's metadata and current status (administrators/issuers only; others,
    and an unknown id, get :class:`NotFoundError`).  Reads only; records nothing, as
    :func:`list_credentials`."""
    del rt
    if not principal.is_admin:
        raise NotFoundError("no such resource")
    row = session.get(CredentialRow, credential_id)
    if row is None:
        raise NotFoundError("no such credential")
    return _state(session, row)


def credential_states(
    session: Session,
    rt: Runtime,
    principal: Principal,
    subject_token: str,
    *,
    after: str | None = None,
    limit: int = 20,
) -> list[CredentialState]:
    """A page of a subject's credentials with their current status, by id (issuance
    order), the first ``limit`` after id ``after`` (administrators/issuers only; others get
    :class:`NotFoundError`).  One query on the subject's index; reads only."""
    del rt
    if not principal.is_admin:
        raise NotFoundError("no such resource")
    query = select(CredentialRow).where(CredentialRow.subject_token == subject_token)
    if after is not None:
        query = query.where(CredentialRow.id > after)
    rows = session.scalars(query.order_by(CredentialRow.id).limit(max(1, min(limit, 100))))
    return [_state(session, row) for row in rows]
