"""A lender's consent requests, and the reads of a consent by its lender and its borrower.

A request is checked against its template, the issuer's catalogue and the lender's allowed
purposes, and stays PENDING until the borrower decides (``consent/decisions.py``).  A
borrower is named by their identity token or by a reference only the asking lender can use
(:func:`borrower_ref`, handed out by discovery).
"""

from __future__ import annotations

import json
from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from credit_commons.consent import webhooks
from credit_commons.consent.access import Lender, lender_actor
from credit_commons.consent.artefacts import consent_answer, public_view
from credit_commons.consent.errors import ConsentRequestInvalid
from credit_commons.consent.model import ConsentRequest, ConsentStatus
from credit_commons.consent.models import ConsentRow
from credit_commons.consent.schemas import ConsentView
from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.core.errors import CommonsError, NotFoundError
from credit_commons.core.ids import new_id
from credit_commons.events import EventDetails, Token, record_event
from credit_commons.identity import Permission, Principal, authorise, subject_of
from credit_commons.identity import service as identity_service
from credit_commons.issuer import service as catalogue_service
from credit_commons.runtime import Runtime
from credit_commons.vault import WrappedKey

__all__ = [
    "ConsentRequested",
    "borrower_ref",
    "borrower_subject",
    "count_for_borrower",
    "get_for_borrower",
    "get_for_lender",
    "lenders_holding",
    "list_for_borrower",
    "list_for_lender",
    "request_consent",
]


class ConsentRequested(EventDetails, event_type="consent.requested"):
    """A lender asked a borrower for consent (template and purpose; never the scope)."""

    template: Token
    purpose: Token


# -- borrower references (discovery) -----------------------------------------------------


def borrower_ref(rt: Runtime, client_id: str, token: str) -> str:
    """An opaque reference to a borrower that only this lender can use (and only here)."""
    wrapped = rt.vault.kms.wrap(token.encode("ascii"), aad=f"bref\x00{client_id}".encode())
    return "bref_" + b64url_encode(wrapped.version.to_bytes(4, "big") + wrapped.blob)


def _resolve_borrower(rt: Runtime, client_id: str, reference: str) -> str:
    if reference.startswith("idt_"):
        return reference
    try:
        raw = b64url_decode(reference.removeprefix("bref_"))
        wrapped = WrappedKey(rt.vault.kms.kek_id, int.from_bytes(raw[:4], "big"), raw[4:])
        return rt.vault.kms.unwrap(wrapped, aad=f"bref\x00{client_id}".encode()).decode("ascii")
    except (CommonsError, ValueError) as e:
        raise NotFoundError("no such borrower") from e


def borrower_subject(session: Session, rt: Runtime, lender: Lender, reference: str) -> str | None:
    """The pseudonym of the existing borrower ``reference`` (an identity token or this
    lender's ``bref_``) names, or ``None`` — for attributing a refused request to them.
    Raises nothing."""
    try:
        token = _resolve_borrower(rt, lender.client_id, reference)
    except NotFoundError:
        return None
    return subject_of(rt, token) if identity_service.identity_exists(session, token) else None


# -- lender side -------------------------------------------------------------------------


def request_consent(
    session: Session, rt: Runtime, lender: Lender, body: ConsentRequest
) -> ConsentView:
    """A lender's request: checked against the template, the catalogue and the lender's
    allowed purposes; PENDING until the borrower decides.

    Raises ``ConsentRequestInvalid`` and :class:`NotFoundError` (unknown borrower).
    """
    now = rt.clock.now()
    if body.purpose not in lender.purposes:
        raise ConsentRequestInvalid(
            "this purpose is not registered for the lender", extra={"field": "purpose"}
        )
    types = {t.name: t.disclosable for t in catalogue_service.list_types(session, rt)}
    body.check_template(now, types)
    token = _resolve_borrower(rt, lender.client_id, body.borrower)
    if not identity_service.identity_exists(session, token):
        raise NotFoundError("no such borrower")
    row = ConsentRow(
        id=new_id("cns"),
        status=ConsentStatus.PENDING,
        template=body.template,
        lender_client_id=lender.client_id,
        principal=subject_of(rt, token),
        principal_token=token,
        purpose_code=body.purpose,
        mode=body.mode,
        fetch_type=body.fetch_type,
        frequency_unit=body.frequency.unit,
        frequency_value=body.frequency.value,
        data_life_unit=body.data_life.unit,
        data_life_value=body.data_life.value,
        scopes=json.dumps([s.model_dump() for s in body.scopes], sort_keys=True),
        starts_at=body.consent_start or now,
        expires_at=body.consent_expiry,
        otp_attempts=0,
        uses=0,
        window=-1,
        window_uses=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    event = record_event(
        session,
        ConsentRequested(template=row.template, purpose=row.purpose_code),
        actor=lender_actor(rt, lender.client_id),
        at=now,
        subject=row.principal,
        object=rt.objects.digest("consent", row.id),
    )
    webhooks.enqueue(session, rt, row, event.id)
    return consent_answer(ConsentView, row, event_id=event.id)


def get_for_lender(session: Session, rt: Runtime, lender: Lender, consent_id: str) -> ConsentView:
    """Status and (once granted) the signed artefact.  Another lender's consent is 404."""
    del rt
    row = session.get(ConsentRow, consent_id)
    if row is None or row.lender_client_id != lender.client_id:
        raise NotFoundError("no such consent")
    return public_view(row)


def list_for_lender(
    session: Session, rt: Runtime, lender: Lender, *, before: str | None = None, limit: int = 20
) -> list[ConsentView]:
    """The lender's consent requests, newest first, ``limit`` (1-200) of them older than
    consent ``before`` (keyset pagination: one range read of the ``(lender, id)`` index
    whatever the number of consents)."""
    del rt
    query = select(ConsentRow).where(ConsentRow.lender_client_id == lender.client_id)
    if before is not None:
        query = query.where(ConsentRow.id < before)
    query = query.order_by(ConsentRow.id.desc()).limit(max(1, min(limit, 200)))
    return [public_view(r) for r in session.scalars(query)]


# -- borrower side -----------------------------------------------------------------------


def _borrower_row(
    session: Session, rt: Runtime, principal: Principal, consent_id: str
) -> ConsentRow:
    row = session.get(ConsentRow, consent_id)
    if row is None:
        raise NotFoundError("no such consent")
    try:
        authorise(
            session, principal, row.principal_token, Permission.MANAGE_CONSENTS, rt.clock.now()
        )
    except NotFoundError:
        raise NotFoundError("no such consent") from None
    return row


def list_for_borrower(
    session: Session,
    rt: Runtime,
    principal: Principal,
    token: str,
    status: str | None = None,
    *,
    limit: int | None = None,
    before: str | None = None,
) -> list[ConsentView]:
    """The borrower's consents (newest first), optionally of one status; at most ``limit``
    of them, those older than consent ``before`` when given (a page, for the console)."""
    authorise(session, principal, token, Permission.MANAGE_CONSENTS, rt.clock.now())
    query = select(ConsentRow).where(ConsentRow.principal_token == token)
    if status is not None:
        query = query.where(ConsentRow.status == status)
    if before is not None:
        query = query.where(ConsentRow.id < before)
    query = query.order_by(ConsentRow.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [public_view(r) for r in session.scalars(query)]


def count_for_borrower(
    session: Session, rt: Runtime, principal: Principal, token: str, status: str, *, limit: int
) -> int:
    """How many of the borrower's consents are in ``status``, counted up to ``limit`` (the
    console's overview: "more than ..." past it): one read of the borrower's
    ``(principal_token, status, …)`` index entries, no consent loaded or parsed."""
    authorise(session, principal, token, Permission.MANAGE_CONSENTS, rt.clock.now())
    ids = (
        select(ConsentRow.id)
        .where(ConsentRow.principal_token == token, ConsentRow.status == status)
        .limit(limit)
        .subquery()
    )
    return int(session.scalar(select(func.count()).select_from(ids)) or 0)


def lenders_holding(
    session: Session,
    rt: Runtime,
    principal: Principal,
    token: str,
    statuses: Collection[str],
    *,
    limit: int,
) -> list[str]:
    """The client ids of the lenders holding a consent of borrower ``token`` in one of
    ``statuses`` (at most ``limit`` of them, in client-id order): one read of the
    borrower's ``(principal_token, status, …)`` index entries, no consent parsed."""
    authorise(session, principal, token, Permission.MANAGE_CONSENTS, rt.clock.now())
    query = (
        select(ConsentRow.lender_client_id)
        .where(ConsentRow.principal_token == token, ConsentRow.status.in_(list(statuses)))
        .distinct()
        .order_by(ConsentRow.lender_client_id)
        .limit(limit)
    )
    return list(session.scalars(query))


def get_for_borrower(
    session: Session, rt: Runtime, principal: Principal, consent_id: str
) -> ConsentView:
    """One of the borrower's consents."""
    return public_view(_borrower_row(session, rt, principal, consent_id))
