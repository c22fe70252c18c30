"""The verifier's trust list: issuers whose credentials this platform accepts besides its own.

An entry is an issuer identifier exactly as credentials carry it in ``iss``:

* an ``https`` issuer URL — its keys come from its JWT VC Issuer Metadata
  (``/.well-known/jwt-vc-issuer``, SD-JWT VC draft §5), see :mod:`~credit_commons.verifier.foreign`;
* a ``did:web`` — its keys come from its DID document;
* a ``did:key`` — the key is the identifier itself.

Administrators manage the list (``/v1/admin/trusted-issuers``, ``commons issuer trust``);
every change records ``issuer.trusted`` / ``issuer.untrusted`` with the identifier behind
the event's object hash.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.errors import CommonsError, ConflictError, NotFoundError, ValidationError
from credit_commons.core.ids import new_id
from credit_commons.events import EventDetails, record_event
from credit_commons.identity import Principal, actor_of
from credit_commons.keys import decode_did_key, did_web_url
from credit_commons.runtime import Runtime
from credit_commons.verifier.models import TrustedIssuerRow
from credit_commons.verifier.schemas import TrustedIssuerView

__all__ = [
    "IssuerKind",
    "IssuerTrusted",
    "IssuerUntrusted",
    "add_trusted_issuer",
    "issuer_kind",
    "list_trusted_issuers",
    "remove_trusted_issuer",
    "trusted_kind",
]

#: What kind of identifier a trusted issuer has, which decides where its keys come from.
IssuerKind = Literal["https", "did:web", "did:key"]


class IssuerTrusted(EventDetails, event_type="issuer.trusted"):
    """An issuer was added to the trust list (the identifier is behind the object hash)."""

    kind: IssuerKind


class IssuerUntrusted(EventDetails, event_type="issuer.untrusted"):
    """An issuer was removed from the trust list."""

    kind: IssuerKind


def issuer_kind(issuer: str) -> IssuerKind:
    """What kind of issuer identifier ``issuer`` is; raises :class:`ValidationError` for
    anything but an https URL without query, fragment or credentials, a valid ``did:web``
    or a valid ``did:key``."""
    if not isinstance(issuer, str) or not 8 <= len(issuer) <= 512 or not issuer.isascii():
        raise ValidationError("an issuer identifier is 8 to 512 ASCII characters")
    try:
        if issuer.startswith("did:web:"):
            did_web_url(issuer)
            if "#" in issuer:
                raise ValidationError("an issuer DID has no fragment")
            return "did:web"
        if issuer.startswith("did:key:"):
            decode_did_key(issuer)
            return "did:key"
    except CommonsError as e:
        raise ValidationError(f"not a valid issuer DID: {e.detail}") from e
    parts = urlsplit(issuer)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.username
        or parts.password
        or parts.query
        or parts.fragment
        or any(c.isspace() for c in issuer)
    ):
        raise ValidationError(
            "an issuer is an https URL (no query or fragment), did:web or did:key"
        )
    return "https"


def _admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise NotFoundError("no such resource")


def _view(row: TrustedIssuerRow) -> TrustedIssuerView:
    return TrustedIssuerView(
        id=row.id, issuer=row.issuer, kind=row.kind, added_at=utc(row.added_at).isoformat()
    )


def add_trusted_issuer(
    session: Session, rt: Runtime, principal: Principal, issuer: str
) -> TrustedIssuerView:
    """Trust ``issuer`` (administrators only; others get :class:`NotFoundError`).

    Raises :class:`ValidationError` for a malformed identifier and :class:`ConflictError`
    when it is already trusted.
    """
    _admin(principal)
    kind = issuer_kind(issuer)
    if session.scalar(select(TrustedIssuerRow.id).where(TrustedIssuerRow.issuer == issuer)):
        raise ConflictError("the issuer is already trusted")
    now = rt.clock.now()
    row = TrustedIssuerRow(id=new_id("tis"), issuer=issuer, kind=kind, added_at=now)
    try:
        with session.begin_nested():
            session.add(row)
    except DbIntegrityError as e:
        raise ConflictError("the issuer is already trusted") from e
    record_event(
        session,
        IssuerTrusted(kind=kind),
        actor=actor_of(rt, principal),
        at=now,
        object=rt.objects.digest("trusted_issuer", issuer),
    )
    return _view(row)


def list_trusted_issuers(
    session: Session, rt: Runtime, principal: Principal
) -> list[TrustedIssuerView]:
    """Every trusted issuer, oldest first (administrators only)."""
    del rt
    _admin(principal)
    rows = session.scalars(select(TrustedIssuerRow).order_by(TrustedIssuerRow.id))
    return [_view(r) for r in rows]


def remove_trusted_issuer(
    session: Session, rt: Runtime, principal: Principal, issuer_or_id: str
) -> TrustedIssuerView:
    """Stop trusting an issuer, named by its identifier or its entry id (administrators).

    Raises :class:`NotFoundError` when it is not trusted.
    """
    _admin(principal)
    row = session.scalar(
        select(TrustedIssuerRow).where(
            (TrustedIssuerRow.issuer == issuer_or_id) | (TrustedIssuerRow.id == issuer_or_id)
        )
    )
    if row is None:
        raise NotFoundError("the issuer is not trusted")
    removed = _view(row)
    session.execute(delete(TrustedIssuerRow).where(TrustedIssuerRow.id == row.id))
    record_event(
        session,
        IssuerUntrusted(kind=row.kind),  # type: ignore[arg-type]
        actor=actor_of(rt, principal),
        at=rt.clock.now(),
        object=rt.objects.digest("trusted_issuer", row.issuer),
    )
    return removed


def trusted_kind(session: Session, issuer: str) -> IssuerKind | None:
    """The kind of ``issuer`` when it is on the trust list, else ``None``."""
    kind = session.scalar(select(TrustedIssuerRow.kind).where(TrustedIssuerRow.issuer == issuer))
    return kind if kind in ("https", "did:web", "did:key") else None  # type: ignore[return-value]
