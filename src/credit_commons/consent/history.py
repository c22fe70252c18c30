"""A borrower's access history: who saw what, when, allowed or denied, with receipts.

Read from the event spine: the ``access.*`` events whose subject is the borrower's
pseudonym: data accesses by lenders, and every attempt on the borrower's consents that was
refused (decisions by someone who may not take them, wrong DID signatures and one-time
codes).  Lenders are named by matching actor pseudonyms with the lenders the borrower has
consents with, other actors by what they are to the borrower; each entry carries its log
receipt (with the full event, since the borrower is entitled to it) once a checkpoint
covers it, or ``receipt: null`` until then.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.consent.access import anonymous_actor, lender_actor
from credit_commons.consent.models import ConsentRow
from credit_commons.consent.schemas import AccessRecord
from credit_commons.core.clock import utc
from credit_commons.events import EventRow
from credit_commons.identity import (
    Permission,
    Principal,
    actor_of,
    authorise,
    delegatees_of,
    subject_of,
)
from credit_commons.ledger import service as log_service
from credit_commons.lenders import client_names
from credit_commons.runtime import Runtime

__all__ = ["access_history"]

_TYPES = ("access.allowed", "access.denied")


def access_history(
    session: Session,
    rt: Runtime,
    principal: Principal,
    token: str,
    *,
    limit: int = 200,
    before: str | None = None,
) -> list[AccessRecord]:
    """The borrower's access events, newest first (those older than event ``before`` when
    given: a page, for the console), each with its receipt when available.

    Each entry says who tried (``actor``, a pseudonym, and ``actor_kind``: ``lender``,
    ``borrower``, ``owner``, ``delegate`` — any identity the borrower ever delegated to,
    field agents included — ``unidentified`` for a caller nobody could name, ``other``
    for anyone else, administrators included), what (``operation``), and the ``outcome``
    with its ``reason``.  Raises :class:`NotFoundError` when ``principal`` may not read
    the borrower's data.
    """
    identity = authorise(session, principal, token, Permission.MANAGE_CONSENTS, rt.clock.now())
    consents = session.execute(
        select(ConsentRow.id, ConsentRow.lender_client_id).where(
            ConsentRow.principal_token == token
        )
    ).all()
    # One keyed pseudonym per lender, however many consents the borrower has with it.
    lenders = {lender_actor(rt, c): c for c in {c.lender_client_id for c in consents}}
    names = client_names(session, lenders.values())
    kinds = _actor_kinds(session, rt, token, identity.owner_token)
    kinds.update(dict.fromkeys(lenders, "lender"))
    lenders[anonymous_actor(rt)] = "unknown"
    query = select(EventRow).where(
        EventRow.subject == subject_of(rt, token), EventRow.type.in_(_TYPES)
    )
    if before is not None:
        query = query.where(EventRow.id < before)
    rows = session.scalars(query.order_by(EventRow.id.desc()).limit(limit)).all()
    objects = _consent_objects(rt, [c.id for c in consents], {r.object for r in rows if r.object})
    # Every receipt against the one latest checkpoint, read together (ledger.receipts),
    # with the events just read rather than read again.
    receipts = log_service.receipts(
        session, [row.id for row in rows], include_event=True, cache=rt.tile_cache, events=rows
    )
    out = []
    for row in rows:
        details = json.loads(row.details)
        receipt = receipts.get(row.id)
        out.append(
            AccessRecord(
                event_id=row.id,
                at=utc(row.at).isoformat(),
                outcome="allowed" if row.type == "access.allowed" else "denied",
                actor=row.actor,
                actor_kind=kinds.get(row.actor, "other"),
                lender=lenders.get(row.actor, "unknown"),
                lender_name=names.get(lenders.get(row.actor, ""), "unknown"),
                consent_id=objects.get(row.object or ""),
                operation=details.get("operation"),
                reason=details.get("reason"),
                receipt=receipt,
            )
        )
    return out


def _consent_objects(rt: Runtime, consent_ids: list[str], wanted: set[str]) -> dict[str, str]:
    # The consent id of each event ``object`` in ``wanted`` that is one of the borrower's
    # consents: their keyed digests, and the unkeyed ones of events recorded before digests
    # were keyed -- newest consents first, stopping once every wanted object is named.
    found: dict[str, str] = {}
    for consent_id in sorted(consent_ids, reverse=True):
        if len(found) == len(wanted):
            break
        for candidate in rt.objects.candidates("consent", consent_id):
            if candidate in wanted:
                found[candidate] = consent_id
    return found


def _actor_kinds(session: Session, rt: Runtime, token: str, owner: str | None) -> dict[str, str]:
    # The actor pseudonyms the borrower can put a name to, and what each is to them.
    kinds = {anonymous_actor(rt): "unidentified"}
    for delegate in delegatees_of(session, token):
        kinds[actor_of(rt, Principal(delegate, "identity"))] = "delegate"
    if owner:
        kinds[actor_of(rt, Principal(owner, "identity"))] = "owner"
    kinds[actor_of(rt, Principal(token, "identity"))] = "borrower"
    kinds[subject_of(rt, token)] = "borrower"
    return kinds
