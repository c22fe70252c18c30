"""A borrower's decisions on their consents: approve, reject, pause, resume, revoke.

Who may decide is settled in one place, :func:`decider`: the borrower's own session, the
owner of an enterprise borrower, a delegate holding ``manage:consents`` — or, without a
session, approval by a signature with the borrower's DID key.  Never an administrator.
Anyone else gets the 404 of an unknown consent, and the attempt is recorded in the
borrower's access history (``RefusedDecision``).  The row, the event and the artefact record
by whose authority the decision was taken (``approval``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.consent.access import RefusedDecision, anonymous_actor
from credit_commons.consent.artefacts import consent_answer
from credit_commons.consent.errors import ConsentStateInvalid
from credit_commons.consent.holder_auth import HOLDER_ROLE
from credit_commons.consent.model import ConsentStatus
from credit_commons.consent.models import ConsentRow
from credit_commons.consent.schemas import ConsentDecision, RevokedAll
from credit_commons.consent.transitions import TRANSITIONS, change, grant
from credit_commons.core.encoding import b64url_decode
from credit_commons.core.errors import CommonsError, NotFoundError
from credit_commons.core.net import OutboundFetcher
from credit_commons.identity import Permission, Principal, acting_for, actor_of, subject_of
from credit_commons.identity import service as identity_service
from credit_commons.keys import DidResolver
from credit_commons.ledger import pending_receipt
from credit_commons.runtime import Runtime

__all__ = [
    "Decider",
    "approval_message",
    "decide",
    "decider",
    "operation_token",
    "revoke_all",
]


def approval_message(consent_id: str) -> bytes:
    """What a borrower signs with their DID key to approve ``consent_id``."""
    return f"credit-commons consent approve\n{consent_id}\n".encode()


def decide(
    session: Session,
    rt: Runtime,
    principal: Principal | None,
    consent_id: str,
    action: str,
    *,
    signature: str | None = None,
) -> ConsentDecision:
    """Approve, reject, pause, resume or revoke one consent, as the borrower.

    Who may decide (:func:`decider`): the borrower's own session, the owner of an
    enterprise borrower, a delegate the borrower named with ``manage:consents`` — or,
    without a session (``principal`` None), approval only, by a signature of
    :func:`approval_message` with the borrower's DID key (``signature``, base64url).  The
    row, the event and the artefact record which (``approval``).

    Raises :class:`NotFoundError` for an unknown consent; ``RefusedDecision`` — the same
    404, recorded in the borrower's access history once the request has rolled back — for
    anyone else (administrators included) or a wrong signature; ``ConsentStateInvalid``
    when the consent's state does not allow the action.
    """
    row = session.get(ConsentRow, consent_id)
    if row is None:
        raise NotFoundError("no such consent")
    if principal is None:
        if action != "approve" or signature is None:
            raise NotFoundError("no such consent")
        who = _did_decider(session, rt, row, signature)
    else:
        who = decider(
            session,
            rt,
            principal,
            row.principal_token,
            operation_token(action),
            object=rt.objects.digest("consent", row.id),
        )
    return _apply(session, rt, row, action, who)


@dataclass(frozen=True)
class Decider:
    """Who takes a decision on a borrower's consent, and how it is recorded.

    ``approval`` is ``self``, ``owner``, ``delegate``, ``did`` or ``assisted``; ``actor``
    the pseudonym the event names; ``facilitator`` the pseudonym of whoever acted for the
    borrower (owner, delegate, field agent), ``None`` when the borrower acted.
    """

    approval: str
    actor: str
    facilitator: str | None


def operation_token(action: str) -> str:
    """The operation token of a decision in access events (``consent.revoke_all``)."""
    return "consent." + action.replace("-", "_")


def decider(
    session: Session,
    rt: Runtime,
    principal: Principal,
    token: str,
    operation: str,
    *,
    object: str | None = None,
    unknown: str = "no such consent",
) -> Decider:
    """The :class:`Decider` ``principal`` is for borrower ``token``'s consents: the
    borrower (``self``; ``did`` when the request was signed by their DID key), the owner
    of an enterprise borrower, or a delegate holding ``manage:consents`` — never an
    administrator.

    Raises ``RefusedDecision`` for anyone else: the 404 whose detail is ``unknown`` (what
    the caller would get for something that does not exist), recording the attempt as
    ``access.denied`` (``operation``, reason ``consent.not_authorised``, ``object``) with
    the borrower as subject.
    """
    kind = acting_for(session, principal, token, Permission.MANAGE_CONSENTS, rt.clock.now())
    actor = actor_of(rt, principal)
    if kind is None:
        raise RefusedDecision(
            unknown,
            operation=operation,
            reason="consent.not_authorised",
            actor=actor,
            subject=subject_of(rt, token),
            object=object,
        )
    if kind == "self" and principal.role == HOLDER_ROLE:
        # A request signed by the borrower's DID key (consent/holder_auth.py).
        return Decider("did", actor, None)
    return Decider(kind, actor, None if kind == "self" else actor)


def _did_decider(session: Session, rt: Runtime, row: ConsentRow, signature: str) -> Decider:
    try:
        _verify_did_signature(session, rt, row.principal_token, row.id, signature)
    except NotFoundError:
        # Whoever sent it is not known: the event's actor is the unidentified caller.
        raise RefusedDecision(
            "no such consent",
            operation=operation_token("approve"),
            reason="consent.signature_invalid",
            actor=anonymous_actor(rt),
            subject=row.principal,
            object=rt.objects.digest("consent", row.id),
        ) from None
    return Decider("did", subject_of(rt, row.principal_token), None)


def _apply(
    session: Session, rt: Runtime, row: ConsentRow, action: str, who: Decider
) -> ConsentDecision:
    # The decision itself, once ``who`` may take it.
    if action == "approve":
        if row.status != ConsentStatus.PENDING:
            raise ConsentStateInvalid(f"a {row.status} consent cannot be approved")
        event_id = grant(
            session,
            rt,
            row,
            approval=who.approval,
            actor=who.actor,
            facilitator=who.facilitator,
        )
    else:
        allowed, target = TRANSITIONS[action]
        if row.status not in allowed:
            raise ConsentStateInvalid(f"a {row.status} consent cannot be {action}d")
        event_id = change(session, rt, row, target, who.actor, approval=who.approval)
    if action == "revoke":
        # The proof of withdrawal, signed by the log at once (docs/wallet.md).
        receipt = pending_receipt(session, rt, event_id)
        return consent_answer(ConsentDecision, row, event_id=event_id, receipt=receipt)
    return consent_answer(ConsentDecision, row, event_id=event_id)


def _verify_did_signature(
    session: Session, rt: Runtime, token: str, consent_id: str, signature: str
) -> None:
    try:
        did = identity_service.registered_did(session, rt, token)
        if did is None:
            raise NotFoundError("no such consent")
        fetcher = OutboundFetcher(
            allow_private=rt.settings.insecure_allow_private_network,
            allow_http=rt.settings.insecure_allow_http,
        )
        try:
            key = DidResolver(fetcher).resolve_key(did)
        finally:
            fetcher.close()
        key.verify(key.key_type.jose_alg, approval_message(consent_id), b64url_decode(signature))
    except CommonsError as e:
        raise NotFoundError("no such consent") from e


def revoke_all(
    session: Session, rt: Runtime, principal: Principal, token: str, lender_client_id: str
) -> RevokedAll:
    """Revoke every active or paused consent of ``token`` given to one lender (seed 001),
    as the borrower (see :func:`decider`).

    Raises :class:`NotFoundError` for an unknown borrower and ``RefusedDecision`` (the
    same 404, recorded) for a caller who may not decide for them.
    """
    if not identity_service.identity_exists(session, token):
        raise NotFoundError("no such identity")
    who = decider(
        session, rt, principal, token, operation_token("revoke-all"), unknown="no such identity"
    )
    rows = session.scalars(
        select(ConsentRow)
        .where(
            ConsentRow.principal_token == token,
            ConsentRow.lender_client_id == lender_client_id,
            ConsentRow.status.in_([ConsentStatus.ACTIVE, ConsentStatus.PAUSED]),
        )
        .with_for_update()
    ).all()
    receipts = {
        r.id: pending_receipt(
            session,
            rt,
            change(session, rt, r, ConsentStatus.REVOKED, who.actor, approval=who.approval),
        )
        for r in rows
    }
    return RevokedAll(revoked=[r.id for r in rows], receipts=receipts)
