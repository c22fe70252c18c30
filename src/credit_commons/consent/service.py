"""Use cases of consent: request, decide, check, retrieve under consent, expire.

Every state change writes its event (``consent.requested``, ``consent.granted``,
``consent.rejected``, ``consent.paused``, ``consent.resumed``, ``consent.revoked``,
``consent.expired``) and queues a signed webhook to the lender, in the same transaction.
A granted consent is an artefact signed by the platform key ``consent`` (a compact JWS,
``typ: consent+jwt``) that never changes: a change of terms is a new consent.

The check (:func:`check`, :func:`check_consent`) is one indexed read and a pure
evaluation (``model.evaluate``).  Retrieval locks the consent row (``FOR UPDATE``), so a
revocation that commits first is always seen, and counts the use in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from credit_commons.consent import webhooks
from credit_commons.consent.access import (
    AccessDenied,
    Denied,
    RefusedDecision,
    anonymous_actor,
    lender_actor,
    record_allowed,
)
from credit_commons.consent.errors import (
    ConsentError,
    ConsentNotFound,
    ConsentRequestInvalid,
    ConsentStateInvalid,
    OneTimeCodeRefused,
)
from credit_commons.consent.holder_auth import HOLDER_ROLE
from credit_commons.consent.model import (
    PURPOSES,
    ConsentRequest,
    ConsentStatus,
    ConsentView,
    evaluate,
    next_use,
    scopes_map,
    was_assisted,
)
from credit_commons.consent.models import ConsentRow
from credit_commons.core.clock import utc
from credit_commons.core.db import HotQuery, HotStatement, stored_datetime
from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.core.errors import CommonsError, NotFoundError
from credit_commons.core.ids import new_id
from credit_commons.events import EventDetails, EventRow, Token, record_event
from credit_commons.formats.jws import sign_compact
from credit_commons.identity.models import IdentityRow
from credit_commons.identity.schemas import Permission
from credit_commons.identity.service import (
    Principal,
    acting_for,
    actor_of,
    authorise,
    subject_of,
)
from credit_commons.issuer import service as catalogue_service
from credit_commons.keys import service as key_service
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.store import KeyVersion, StoredSigner
from credit_commons.ledger.promises import pending_receipt
from credit_commons.runtime import Runtime
from credit_commons.vault.kms import WrappedKey

__all__ = [
    "CONSENT_KEY",
    "ConsentChanged",
    "ConsentRequested",
    "Decider",
    "Lender",
    "borrower_subject",
    "check",
    "check_consent",
    "consent_key_versions",
    "consent_signer",
    "decide",
    "decider",
    "expire_due",
    "forget_subject",
    "get_for_borrower",
    "get_for_lender",
    "list_for_borrower",
    "locked_for_use",
    "mark_used",
    "read_consent",
    "request_consent",
    "revoke_all",
]

CONSENT_KEY = "consent"
ARTEFACT_TYP = "consent+jwt"
_OTP_TTL = timedelta(minutes=10)
_OTP_ATTEMPTS = 5
_CODES_PER_HOUR = 3


class Lender(Protocol):
    """An authenticated lender client (``gateway``'s ``LenderPrincipal``)."""

    @property
    def client_id(self) -> str: ...

    @property
    def purposes(self) -> frozenset[str]: ...


class ConsentRequested(EventDetails, event_type="consent.requested"):
    """A lender asked a borrower for consent (template and purpose; never the scope)."""

    template: Token
    purpose: Token


class ConsentChanged(EventDetails, event_type="consent.changed"):
    """Base of the consent state changes; each has its own event type."""

    status: Token
    approval: Token | None = None


class ConsentGranted(ConsentChanged, event_type="consent.granted"):
    """The borrower (or an agent they confirmed) granted the consent."""

    artefact_digest: Token


class ConsentRejected(ConsentChanged, event_type="consent.rejected"):
    """The borrower rejected the request."""


class ConsentPausedEvent(ConsentChanged, event_type="consent.paused"):
    """The borrower paused the consent."""


class ConsentResumed(ConsentChanged, event_type="consent.resumed"):
    """The borrower resumed a paused consent."""


class ConsentRevokedEvent(ConsentChanged, event_type="consent.revoked"):
    """The borrower revoked the consent."""


class ConsentExpiredEvent(ConsentChanged, event_type="consent.expired"):
    """The consent (or the request) ran past its expiry."""


class ConsentAssisted(EventDetails, event_type="consent.assisted"):
    """A field agent prepared the consent; a one-time code went to the borrower."""

    delivered: bool


_EVENTS: dict[str, type[ConsentChanged]] = {
    ConsentStatus.REJECTED: ConsentRejected,
    ConsentStatus.PAUSED: ConsentPausedEvent,
    ConsentStatus.REVOKED: ConsentRevokedEvent,
    ConsentStatus.EXPIRED: ConsentExpiredEvent,
}

# action -> (states it applies to, state it leads to)
_TRANSITIONS: dict[str, tuple[frozenset[str], ConsentStatus]] = {
    "reject": (frozenset({ConsentStatus.PENDING}), ConsentStatus.REJECTED),
    "pause": (frozenset({ConsentStatus.ACTIVE}), ConsentStatus.PAUSED),
    "resume": (frozenset({ConsentStatus.PAUSED}), ConsentStatus.ACTIVE),
    "revoke": (frozenset({ConsentStatus.ACTIVE, ConsentStatus.PAUSED}), ConsentStatus.REVOKED),
}


# -- keys and artefacts ------------------------------------------------------------------


_CONSENT_PLATFORM_KEY = key_service.PlatformKey(CONSENT_KEY, KeyType.ED25519, "consent")


def consent_signer(session: Session, rt: Runtime) -> StoredSigner:
    """The key that signs artefacts and webhooks (made on first use)."""
    return key_service.platform_signer(session, rt, _CONSENT_PLATFORM_KEY)


def consent_key_versions(session: Session, rt: Runtime) -> list[KeyVersion]:
    """Every version of the key that signs artefacts and webhooks (made on first use)."""
    return key_service.platform_key_versions(session, rt, _CONSENT_PLATFORM_KEY)


def _ts(value: datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _artefact(session: Session, rt: Runtime, row: ConsentRow, now: datetime) -> str:
    # The AA ConsentDetail shape, with credential scopes in place of FI types.
    payload = {
        "ver": "1.0",
        "iss": rt.settings.public_url,
        "iat": int(now.timestamp()),
        "consentId": row.id,
        "ConsentDetail": {
            "consentStart": _ts(row.starts_at),
            "consentExpiry": _ts(row.expires_at),
            "consentMode": row.mode,
            "fetchType": row.fetch_type,
            "consentTypes": ["CREDENTIAL"],
            "DataConsumer": {"id": row.lender_client_id, "type": "LENDER"},
            "Customer": {"id": row.principal},
            "Purpose": {
                "code": row.purpose_code,
                "text": PURPOSES[row.purpose_code],
                "Category": {"type": row.template},
            },
            "DataLife": {"unit": row.data_life_unit, "value": row.data_life_value},
            "Frequency": {"unit": row.frequency_unit, "value": row.frequency_value},
            "scopes": json.loads(row.scopes),
        },
        "approval": row.approval,
        "facilitator": row.facilitator,
    }
    signer = consent_signer(session, rt)
    return sign_compact({"typ": ARTEFACT_TYP, "kid": signer.kid}, payload, signer)


# -- views -------------------------------------------------------------------------------


def _view(row: Any) -> ConsentView:
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


def _public(row: ConsentRow) -> dict[str, Any]:
    return {
        "consent_id": row.id,
        "status": row.status,
        "template": row.template,
        "lender": row.lender_client_id,
        "purpose": {"code": row.purpose_code, "text": PURPOSES.get(row.purpose_code, "")},
        "mode": row.mode,
        "fetch_type": row.fetch_type,
        "frequency": {"unit": row.frequency_unit, "value": row.frequency_value},
        "data_life": {"unit": row.data_life_unit, "value": row.data_life_value},
        "consent_start": utc(row.starts_at).isoformat(),
        "consent_expiry": utc(row.expires_at).isoformat(),
        "scopes": json.loads(row.scopes),
        "approval": row.approval,
        "assisted": was_assisted(row.approval, row.facilitator),
        "uses": row.uses,
        "artefact": row.artefact,
        "created_at": utc(row.created_at).isoformat(),
        "updated_at": utc(row.updated_at).isoformat(),
    }


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
    return subject_of(rt, token) if session.get(IdentityRow, token) is not None else None


# -- lender side -------------------------------------------------------------------------


def request_consent(
    session: Session, rt: Runtime, lender: Lender, body: ConsentRequest
) -> dict[str, Any]:
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
    if session.get(IdentityRow, token) is None:
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
    return {**_public(row), "event_id": event.id}


def get_for_lender(
    session: Session, rt: Runtime, lender: Lender, consent_id: str
) -> dict[str, Any]:
    """Status and (once granted) the signed artefact.  Another lender's consent is 404."""
    del rt
    row = session.get(ConsentRow, consent_id)
    if row is None or row.lender_client_id != lender.client_id:
        raise NotFoundError("no such consent")
    return _public(row)


# -- the check ---------------------------------------------------------------------------


def check_consent(row: Any, type_name: str, claims: frozenset[str], now: datetime) -> None:
    """Evaluate one consent row; raises a :class:`ConsentError` (``ConsentNotFound`` for
    ``None``)."""
    if row is None:
        raise ConsentNotFound()
    evaluate(_view(row), type_name, claims, now)


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


def locked_for_use(session: Session, consent_id: str) -> Any:
    """The consent's row (a named tuple; datetimes as stored), locked until the
    transaction ends (``FOR UPDATE``; SQLite's writer holds the whole database)."""
    return _LOCKED.first(session, consent_id=consent_id)


def read_consent(session: Session, consent_id: str) -> Any:
    """The consent's row (a named tuple; datetimes as stored), not locked."""
    return _READ.first(session, consent_id=consent_id)


def mark_used(session: Session, row: Any, now: datetime) -> None:
    """Count one fetch of ``row`` (after a successful check, in the same transaction)."""
    window, window_uses = next_use(_view(row), now)
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
    row: Any,
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


def record_use(session: Session, rt: Runtime, lender: Lender, row: Any, operation: str) -> str:
    """Record ``access.allowed`` for a use of ``row``; returns the event id."""
    return record_allowed(
        session,
        rt,
        actor=lender_actor(rt, lender.client_id),
        operation=operation,
        subject=row.principal,
        object=rt.objects.digest("consent", row.id),
    ).id


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
    session: Session, rt: Runtime, principal: Principal, token: str, status: str | None = None
) -> list[dict[str, Any]]:
    """The borrower's consents (newest first), optionally of one status."""
    authorise(session, principal, token, Permission.MANAGE_CONSENTS, rt.clock.now())
    query = select(ConsentRow).where(ConsentRow.principal_token == token)
    if status is not None:
        query = query.where(ConsentRow.status == status)
    return [_public(r) for r in session.scalars(query.order_by(ConsentRow.id.desc()))]


def get_for_borrower(
    session: Session, rt: Runtime, principal: Principal, consent_id: str
) -> dict[str, Any]:
    """One of the borrower's consents."""
    return _public(_borrower_row(session, rt, principal, consent_id))


def _change(
    session: Session,
    rt: Runtime,
    row: ConsentRow,
    target: ConsentStatus,
    actor: str,
    *,
    approval: str | None = None,
) -> str:
    # ``approval`` says by whose authority (the Decider's); None for the expiry job.
    now = rt.clock.now()
    row.status = target
    row.updated_at = now
    details_type = _EVENTS.get(target, ConsentResumed)
    event = record_event(
        session,
        details_type(status=target.value, approval=approval),
        actor=actor,
        at=now,
        subject=row.principal,
        object=rt.objects.digest("consent", row.id),
    )
    webhooks.enqueue(session, rt, row, event.id)
    return event.id


def _grant(
    session: Session,
    rt: Runtime,
    row: ConsentRow,
    *,
    approval: str,
    actor: str,
    facilitator: str | None,
) -> str:
    now = rt.clock.now()
    if now >= utc(row.expires_at):
        raise ConsentStateInvalid("the consent request has expired")
    row.status = ConsentStatus.ACTIVE
    row.approval, row.facilitator = approval, facilitator
    row.otp_hash = row.otp_expires_at = None
    row.updated_at = now
    row.artefact = _artefact(session, rt, row, now)
    event = record_event(
        session,
        ConsentGranted(
            status=ConsentStatus.ACTIVE.value,
            approval=approval,
            artefact_digest=hashlib.sha256(row.artefact.encode()).hexdigest(),
        ),
        actor=actor,
        at=now,
        subject=row.principal,
        object=rt.objects.digest("consent", row.id),
    )
    webhooks.enqueue(session, rt, row, event.id)
    return event.id


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
) -> dict[str, Any]:
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
            _operation(action),
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


def _operation(action: str) -> str:
    # The operation token of a decision in access events ("consent.revoke_all").
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
            operation=_operation("approve"),
            reason="consent.signature_invalid",
            actor=anonymous_actor(rt),
            subject=row.principal,
            object=rt.objects.digest("consent", row.id),
        ) from None
    return Decider("did", subject_of(rt, row.principal_token), None)


def _apply(
    session: Session, rt: Runtime, row: ConsentRow, action: str, who: Decider
) -> dict[str, Any]:
    # The decision itself, once ``who`` may take it.
    if action == "approve":
        if row.status != ConsentStatus.PENDING:
            raise ConsentStateInvalid(f"a {row.status} consent cannot be approved")
        event_id = _grant(
            session,
            rt,
            row,
            approval=who.approval,
            actor=who.actor,
            facilitator=who.facilitator,
        )
    else:
        allowed, target = _TRANSITIONS[action]
        if row.status not in allowed:
            raise ConsentStateInvalid(f"a {row.status} consent cannot be {action}d")
        event_id = _change(session, rt, row, target, who.actor, approval=who.approval)
    answer = {**_public(row), "event_id": event_id}
    if action == "revoke":
        # The proof of withdrawal, signed by the log at once (docs/wallet.md).
        answer["receipt"] = pending_receipt(session, rt, event_id)
    return answer


def _verify_did_signature(
    session: Session, rt: Runtime, token: str, consent_id: str, signature: str
) -> None:
    from credit_commons.core.net import OutboundFetcher  # noqa: PLC0415 - only for DIDs
    from credit_commons.identity import service as identity_service  # noqa: PLC0415
    from credit_commons.keys.did_web import DidResolver  # noqa: PLC0415

    try:
        profile = identity_service.get_profile(session, rt, Principal(token, "identity"), token)
        did = profile.get("did")
        if not isinstance(did, str):
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
) -> dict[str, Any]:
    """Revoke every active or paused consent of ``token`` given to one lender (seed 001),
    as the borrower (see :func:`decider`).

    Raises :class:`NotFoundError` for an unknown borrower and ``RefusedDecision`` (the
    same 404, recorded) for a caller who may not decide for them.
    """
    if session.get(IdentityRow, token) is None:
        raise NotFoundError("no such identity")
    who = decider(
        session, rt, principal, token, _operation("revoke-all"), unknown="no such identity"
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
            _change(session, rt, r, ConsentStatus.REVOKED, who.actor, approval=who.approval),
        )
        for r in rows
    }
    return {"revoked": [r.id for r in rows], "receipts": receipts}


# -- assisted consent (seed 000) ----------------------------------------------------------


def assist(session: Session, rt: Runtime, agent: Principal, consent_id: str) -> dict[str, Any]:
    """A field agent with a live ``assist:consent`` delegation from the borrower prepares a
    pending consent: a one-time code goes to the borrower (``consent.notify``), who reads
    it to the agent.

    Raises :class:`NotFoundError` (unknown, or not pending), ``RefusedDecision`` (the same
    404, recorded for the borrower) without the delegation, ``ConsentStateInvalid`` past
    three codes an hour.
    """
    from credit_commons.consent import notify  # noqa: PLC0415 - cycle-free edge

    row = session.get(ConsentRow, consent_id)
    if row is None:
        raise NotFoundError("no such consent")
    _require_assist(session, rt, agent, row, _operation("assist"))
    if row.status != ConsentStatus.PENDING:
        raise NotFoundError("no such consent")
    # At most three codes per consent per hour: with five tries per code, guessing stays
    # at fifteen tries an hour out of a million, and every code reaches the borrower.
    since = rt.clock.now() - timedelta(hours=1)
    sent = session.scalar(
        select(func.count())
        .select_from(EventRow)
        .where(
            EventRow.type == ConsentAssisted.event_type,
            EventRow.object.in_(rt.objects.candidates("consent", row.id)),
            EventRow.at >= since,
        )
    )
    if (sent or 0) >= _CODES_PER_HOUR:
        raise ConsentStateInvalid("three codes were sent in the last hour; try again later")
    code = f"{secrets.randbelow(1_000_000):06d}"
    row.otp_hash = _otp_hash(rt, row.id, code)
    row.otp_expires_at = rt.clock.now() + _OTP_TTL
    row.otp_attempts = 0
    row.facilitator = actor_of(rt, agent)
    delivered = notify.send_code(rt, row.principal_token, row.id, code)
    record_event(
        session,
        ConsentAssisted(delivered=delivered),
        actor=actor_of(rt, agent),
        at=rt.clock.now(),
        subject=row.principal,
        object=rt.objects.digest("consent", row.id),
    )
    return {
        "consent_id": row.id,
        "code_sent": delivered,
        "expires_in": int(_OTP_TTL.total_seconds()),
    }


def confirm_assisted(
    session: Session, rt: Runtime, agent: Principal, consent_id: str, code: str
) -> dict[str, Any]:
    """The agent submits the borrower's one-time code: the consent is granted
    (``approval: assisted``), the agent recorded as facilitator.

    A wrong code is answered ``accepted: false`` and recorded in the borrower's access
    history (``consent.otp_invalid``, in this transaction); five wrong codes void the
    code.  Raises :class:`NotFoundError` (unknown, or not pending), ``RefusedDecision``
    (the same 404, recorded) without the agent's delegation, and ``OneTimeCodeRefused``
    (409, recorded) when no code is live or the tries are used up.
    """
    operation = _operation("assist_confirm")
    row = session.get(ConsentRow, consent_id)
    if row is None:
        raise NotFoundError("no such consent")
    _require_assist(session, rt, agent, row, operation)
    if row.status != ConsentStatus.PENDING:
        raise NotFoundError("no such consent")
    actor, target = actor_of(rt, agent), rt.objects.digest("consent", row.id)

    def refused(detail: str, reason: str) -> OneTimeCodeRefused:
        return OneTimeCodeRefused(
            detail,
            operation=operation,
            reason=reason,
            actor=actor,
            subject=row.principal,
            object=target,
        )

    expires = row.otp_expires_at
    if row.otp_hash is None or expires is None or utc(expires) <= rt.clock.now():
        raise refused("no live one-time code; ask for a new one", "consent.otp_expired")
    if row.otp_attempts >= _OTP_ATTEMPTS:
        raise refused("too many wrong codes; ask for a new one", "consent.otp_exhausted")
    if not hmac.compare_digest(row.otp_hash, _otp_hash(rt, row.id, code)):
        row.otp_attempts += 1
        # The answer commits (the count of tries must), and the attempt with it.
        record_event(
            session,
            AccessDenied(operation=operation, reason="consent.otp_invalid"),
            actor=actor,
            at=rt.clock.now(),
            subject=row.principal,
            object=target,
        )
        return {"consent_id": row.id, "status": row.status, "accepted": False}
    event_id = _grant(
        session,
        rt,
        row,
        approval="assisted",
        actor=subject_of(rt, row.principal_token),
        facilitator=actor,
    )
    return {**_public(row), "accepted": True, "event_id": event_id}


def _require_assist(
    session: Session, rt: Runtime, agent: Principal, row: ConsentRow, operation: str
) -> None:
    # Only a live assist:consent delegation from the borrower lets an agent in; anyone
    # else's attempt is refused like an unknown consent, and recorded for the borrower.
    from credit_commons.identity.delegations import has_delegation  # noqa: PLC0415

    if agent.is_admin or not has_delegation(
        session, row.principal_token, agent.subject, Permission.ASSIST_CONSENT, rt.clock.now()
    ):
        raise RefusedDecision(
            "no such consent",
            operation=operation,
            reason="consent.not_authorised",
            actor=actor_of(rt, agent),
            subject=row.principal,
            object=rt.objects.digest("consent", row.id),
        )


def _otp_hash(rt: Runtime, consent_id: str, code: str) -> str:
    return rt.pseudonymizer.pseudonym("consent-otp", f"{consent_id}:{code}")


# -- erasure ---------------------------------------------------------------------------


def forget_subject(session: Session, token: str) -> int:
    """Delete an erased subject's consents and discovery profile (their events stay in the
    log: pseudonyms and digests only).  Returns how many consents were deleted."""
    from credit_commons.consent.models import DiscoveryProfileRow  # noqa: PLC0415

    deleted = session.execute(delete(ConsentRow).where(ConsentRow.principal_token == token))
    session.execute(delete(DiscoveryProfileRow).where(DiscoveryProfileRow.principal_token == token))
    return int(getattr(deleted, "rowcount", 0) or 0)


# -- expiry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryReport:
    """What :func:`expire_due` did."""

    expired: int


def expire_due(session: Session, rt: Runtime, *, limit: int = 1000) -> ExpiryReport:
    """Move consents (and requests) past their expiry to EXPIRED, with their events."""
    now = rt.clock.now()
    rows = session.scalars(
        select(ConsentRow)
        .where(
            ConsentRow.status.in_(
                [ConsentStatus.PENDING, ConsentStatus.ACTIVE, ConsentStatus.PAUSED]
            ),
            ConsentRow.expires_at <= now,
        )
        .limit(limit)
        .with_for_update()
    ).all()
    actor = rt.operator_actor("consent-expiry")
    for row in rows:
        _change(session, rt, row, ConsentStatus.EXPIRED, actor)
    return ExpiryReport(len(rows))
