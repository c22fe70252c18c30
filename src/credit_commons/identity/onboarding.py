"""Onboarding authorities and identifier binding (seed 001, "Bank-Verified User Registration").

An identifier a person asserts at registration is *unverified*: it blocks nobody.  It becomes
*bound* — unique among bound identifiers, the one other domains may rely on — only when an
onboarding authority attests it after its own checks (KYC at a bank branch, documents seen at
an issuer desk).  Two kinds of authority exist, both designated by an administrator:

* ``bank``: a registered lender client; it authenticates with its ordinary OAuth access token
  (``principal`` ``lender:lnd_…``), and the registry entry is its permission to onboard.
* ``issuer_desk``: an issuer's desk with bearer tokens of its own (``principal``
  ``authority:oba_…``, role ``authority``), which grant nothing else.

A binding records on the identity's identifier link the authority and a keyed digest of the
authority's evidence reference (its KYC record number, say — never stored as given), and
writes ``identity.identifier_bound`` (pseudonyms and digests only).  Binding an identifier
that another identity holds bound, or whose subject was erased, is refused — to the
authority, which is accountable for its attempts; self-registrations never learn either.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.errors import ConflictError, NotFoundError, ValidationError
from credit_commons.core.ids import new_id
from credit_commons.events import Digest, EventDetails, Token, record_event
from credit_commons.identity.auth import Principal, actor_of, issue_token, subject_of
from credit_commons.identity.errors import (
    IdentifierBoundElsewhere,
    IdentifierErased,
    NotAnOnboardingAuthority,
)
from credit_commons.identity.identifiers import normalize
from credit_commons.identity.links import (
    identifier_pseudonym,
    identifier_tombstoned,
    identifier_view,
)
from credit_commons.identity.models import (
    BOUND,
    IdentifierLinkRow,
    IdentityRow,
    OnboardingAuthorityRow,
)
from credit_commons.identity.schemas import (
    AuthorityCreated,
    AuthorityView,
    BindingView,
    DeskToken,
    IdentifierBinding,
)
from credit_commons.runtime import Runtime

__all__ = [
    "AUTHORITY_ROLE",
    "AuthorityChanged",
    "AuthorityKind",
    "IdentifierBound",
    "OnboardingAuthority",
    "authority_for",
    "bank_principal",
    "bind_identifier",
    "issue_desk_token",
    "issuer_desk",
    "list_authorities",
    "register_authority",
    "set_authority_active",
]

AUTHORITY_ROLE = "authority"
"""The role of an issuer desk's bearer tokens (they authorise binding and nothing else)."""


class AuthorityKind(StrEnum):
    """Who an onboarding authority is."""

    BANK = "bank"
    ISSUER_DESK = "issuer_desk"


class AuthorityChanged(EventDetails, event_type="onboarding.authority_changed"):
    """An onboarding authority was designated, deactivated or reactivated."""

    kind: AuthorityKind
    active: bool


class IdentifierBound(EventDetails, event_type="identity.identifier_bound"):
    """An onboarding authority bound an identifier to the subject.

    ``authority`` is the authority's public id; ``evidence`` the keyed digest of its
    evidence reference; the event's ``object`` digests the identifier's pseudonym.
    """

    kind: Token
    authority: Token
    evidence: Digest


@dataclass(frozen=True)
class OnboardingAuthority:
    """An active onboarding authority, as resolved from an authenticated caller."""

    id: str
    kind: AuthorityKind
    name: str
    principal: str


def bank_principal(client_id: str) -> str:
    """The registry principal of a bank authority: its lender client id."""
    return f"lender:{client_id}"


def _desk_principal(authority_id: str) -> str:
    return f"authority:{authority_id}"


def _view(row: OnboardingAuthorityRow) -> AuthorityView:
    lender = row.principal.removeprefix("lender:") if row.kind == AuthorityKind.BANK else None
    return AuthorityView(
        authority_id=row.id,
        kind=row.kind,
        name=row.name,
        lender_client_id=lender,
        active=row.active,
        created_at=utc(row.created_at).isoformat(),
        updated_at=utc(row.updated_at).isoformat(),
    )


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise NotFoundError("no such resource")


def register_authority(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    kind: AuthorityKind,
    name: str,
    lender_client_id: str | None = None,
) -> AuthorityCreated:
    """Designate an onboarding authority (administrators only; others get
    :class:`NotFoundError`).

    A bank names its lender client (the caller checks that the client exists — the lender
    registry is not this domain's); an issuer desk gets a bearer token, shown once (a bank's
    answer leaves ``token`` and ``token_expires_at`` unset).  Raises
    :class:`ValidationError` for a bank without a client id or a desk with one, and
    ``ConflictError`` when the lender is an authority already.
    """
    _require_admin(principal)
    if (kind is AuthorityKind.BANK) != (lender_client_id is not None):
        raise ValidationError(
            "a bank names its lender client; an issuer desk names none",
            extra={"field": "lender_client_id"},
        )
    authority_id = new_id("oba")
    who = (
        bank_principal(lender_client_id)
        if lender_client_id is not None
        else _desk_principal(authority_id)
    )
    if session.scalar(
        select(OnboardingAuthorityRow.id).where(OnboardingAuthorityRow.principal == who)
    ):
        raise ConflictError("this lender is an onboarding authority already")
    now = rt.clock.now()
    row = OnboardingAuthorityRow(
        id=authority_id,
        kind=kind.value,
        name=name,
        principal=who,
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    _record_change(session, rt, principal, row)
    view = _view(row).model_dump()
    if kind is not AuthorityKind.ISSUER_DESK:
        return AuthorityCreated(**view)
    token, expires = issue_token(session, rt, who, AUTHORITY_ROLE)
    return AuthorityCreated(**view, token=token, token_expires_at=expires)


def _record_change(
    session: Session, rt: Runtime, principal: Principal, row: OnboardingAuthorityRow
) -> None:
    record_event(
        session,
        AuthorityChanged(kind=AuthorityKind(row.kind), active=row.active),
        actor=actor_of(rt, principal),
        at=rt.clock.now(),
        object=rt.objects.digest("onboarding-authority", row.id),
    )


def _authority_row(session: Session, authority_id: str) -> OnboardingAuthorityRow:
    row = session.get(OnboardingAuthorityRow, authority_id)
    if row is None:
        raise NotFoundError("no such onboarding authority")
    return row


def issue_desk_token(
    session: Session, rt: Runtime, principal: Principal, authority_id: str
) -> DeskToken:
    """A new bearer token for an active issuer desk (administrators only), shown once.

    Raises :class:`NotFoundError` for other callers, an unknown or inactive authority, or a
    bank (a bank authenticates as the lender it is).
    """
    _require_admin(principal)
    row = _authority_row(session, authority_id)
    if row.kind != AuthorityKind.ISSUER_DESK or not row.active:
        raise NotFoundError("no such onboarding authority")
    token, expires = issue_token(session, rt, row.principal, AUTHORITY_ROLE)
    return DeskToken(authority_id=row.id, token=token, token_expires_at=expires)


def set_authority_active(
    session: Session, rt: Runtime, principal: Principal, authority_id: str, *, active: bool
) -> AuthorityView:
    """Deactivate (or reactivate) an authority (administrators only).  Its bindings stay:
    they were attested when it was trusted, and each names it.  Raises
    :class:`NotFoundError`."""
    _require_admin(principal)
    row = _authority_row(session, authority_id)
    if row.active != active:
        row.active = active
        row.updated_at = rt.clock.now()
        _record_change(session, rt, principal, row)
    return _view(row)


def list_authorities(session: Session, principal: Principal) -> list[AuthorityView]:
    """Every onboarding authority (administrators only; others get :class:`NotFoundError`)."""
    _require_admin(principal)
    rows = session.scalars(select(OnboardingAuthorityRow).order_by(OnboardingAuthorityRow.id))
    return [_view(row) for row in rows]


def authority_for(session: Session, principal: str) -> OnboardingAuthority:
    """The active onboarding authority behind an authenticated caller's ``principal``
    (``lender:lnd_…`` or ``authority:oba_…``).

    Raises :class:`NotAnOnboardingAuthority` (403) when there is none or it is inactive.
    """
    row = session.scalar(
        select(OnboardingAuthorityRow).where(OnboardingAuthorityRow.principal == principal)
    )
    if row is None or not row.active:
        raise NotAnOnboardingAuthority("the caller is not an onboarding authority")
    return OnboardingAuthority(row.id, AuthorityKind(row.kind), row.name, row.principal)


def issuer_desk(session: Session, authority_id: str) -> OnboardingAuthority:
    """The active issuer desk ``authority_id`` (an operator binding on its behalf).

    Raises :class:`NotFoundError` when no issuer desk has that id, and
    :class:`NotAnOnboardingAuthority` when it is inactive.
    """
    row = session.get(OnboardingAuthorityRow, authority_id)
    if row is None or row.kind != AuthorityKind.ISSUER_DESK:
        raise NotFoundError("no such issuer desk")
    return authority_for(session, row.principal)


def bind_identifier(
    session: Session, rt: Runtime, authority: OnboardingAuthority, request: IdentifierBinding
) -> BindingView:
    """Bind an identifier to an identity on ``authority``'s attestation.

    Idempotent for the same identity (no second event).  Raises :class:`NotFoundError` for
    an unknown identity, ``IdentifierInvalid`` for a malformed identifier,
    :class:`IdentifierErased` when its subject was erased, and
    :class:`IdentifierBoundElsewhere` when another identity holds it bound.
    """
    token = request.identity_token
    if session.get(IdentityRow, token) is None:
        raise NotFoundError("no such identity")
    pseudonym = identifier_pseudonym(rt, request.kind, normalize(request.kind, request.value))
    if identifier_tombstoned(session, rt, pseudonym):
        raise IdentifierErased(
            "this identifier belonged to an erased subject and cannot be bound",
            extra={"field": request.kind.value},
        )
    holder = session.scalar(
        select(IdentifierLinkRow).where(
            IdentifierLinkRow.pseudonym == pseudonym, IdentifierLinkRow.status == BOUND
        )
    )
    if holder is not None and holder.identity_token == token:
        return _binding(token, holder, None)
    if holder is not None:
        raise IdentifierBoundElsewhere(
            "this identifier is bound to another identity", extra={"field": request.kind.value}
        )
    now = rt.clock.now()
    # Keyed like the identifiers themselves: an evidence reference (a KYC record number) is
    # as guessable as they are, so a plain hash of it would not hide it.
    evidence = rt.vault.kms.hmac(
        f"{authority.id}\x00{request.evidence_ref}".encode(), label="onboarding-evidence"
    ).hex()
    link = session.get(IdentifierLinkRow, (token, pseudonym))
    try:
        # A concurrent binding of the same identifier to another identity loses on the
        # partial unique index; the savepoint keeps the caller's transaction usable.
        with session.begin_nested():
            if link is None:
                link = IdentifierLinkRow(
                    identity_token=token,
                    pseudonym=pseudonym,
                    kind=request.kind.value,
                    created_at=now,
                )
                session.add(link)
            link.status = BOUND
            link.authority_id = authority.id
            link.evidence_digest = evidence
            link.bound_at = now
            session.flush()
    except DbIntegrityError as e:
        raise IdentifierBoundElsewhere(
            "this identifier is bound to another identity", extra={"field": request.kind.value}
        ) from e
    event = record_event(
        session,
        IdentifierBound(kind=request.kind.value, authority=authority.id, evidence=evidence),
        actor=rt.pseudonymizer.pseudonym("actor", authority.principal),
        at=now,
        subject=subject_of(rt, token),
        object=rt.objects.digest("identifier", pseudonym),
    )
    return _binding(token, link, event.id)


def _binding(token: str, link: IdentifierLinkRow, event_id: str | None) -> BindingView:
    return BindingView(
        identity_token=token, **identifier_view(link).model_dump(), event_id=event_id
    )
