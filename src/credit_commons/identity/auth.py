"""Principals, authentication and authorisation of the identity domain.

A caller is a :class:`Principal`: an identity (``idt_…``), an administrator, or another
holder of a bearer token (an onboarding desk…).  :func:`authenticate` resolves an
``Authorization: Bearer cct_…`` header to one; the tokens themselves are stored as their
SHA-256 only (:func:`issue_token`).

Authorisation is object-level, on every call: :func:`authorise` admits the identity itself,
the owner of an enterprise, an administrator and — for a permission — a live delegate;
:func:`acting_for` answers the narrower question of who may act *as* an identity (never an
administrator); :func:`has_delegation` is the delegation check both use.  Anyone else is
answered as "not found", so outsiders learn nothing about which identities exist.

Events name callers and subjects by pseudonym only: :func:`actor_of` and :func:`subject_of`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.errors import NotFoundError, UnauthorizedError
from credit_commons.identity.models import AccessTokenRow, DelegationRow, IdentityRow
from credit_commons.identity.schemas import Permission
from credit_commons.runtime import Runtime

__all__ = [
    "AuthorisedIdentity",
    "Principal",
    "acting_for",
    "actor_of",
    "authenticate",
    "authorise",
    "authorised_row",
    "delegation_effective",
    "has_delegation",
    "issue_admin_token",
    "issue_token",
    "prune_access_tokens",
    "signed_in_still",
    "subject_of",
    "token_digest",
]

_TOKEN_TTL = timedelta(days=30)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an identity (``idt_…``) or an administrator."""

    subject: str
    role: str

    @property
    def is_admin(self) -> bool:
        """Whether the caller is an administrator."""
        return self.role == "admin"


@dataclass(frozen=True)
class AuthorisedIdentity:
    """The identity a caller was authorised for: its token, kind, and (for an enterprise)
    its owner's token."""

    token: str
    kind: str
    owner_token: str | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_digest(token: str) -> str:
    """The SHA-256 a bearer token is stored as: what a console session keeps to check the
    token again later (never the token itself)."""
    return _hash(token)


def signed_in_still(session: Session, rt: Runtime, subject: str, digest: str | None) -> bool:
    """Whether a sign-in of ``subject`` still stands, at one lookup by primary key.

    With ``digest`` (the :func:`token_digest` of the bearer token it was made with) the
    token's row must still exist for ``subject``, unexpired — and, for an identity, the
    identity too.  Without one (a sign-in by one-time code) ``subject`` must be an identity
    that still exists.  An erased identity's tokens and row are gone, a pruned or expired
    token is refused: the console ends the session (``web/sessions.py``)."""
    if digest is not None:
        query = select(AccessTokenRow.expires_at).where(
            AccessTokenRow.token_hash == digest, AccessTokenRow.principal == subject
        )
        if subject.startswith("idt_"):
            query = query.join(IdentityRow, IdentityRow.token == AccessTokenRow.principal)
        expires = session.scalar(query)
        return expires is not None and utc(expires) > rt.clock.now()
    if subject.startswith("idt_"):
        found = session.scalar(select(IdentityRow.token).where(IdentityRow.token == subject))
        return found is not None
    return False


def issue_token(session: Session, rt: Runtime, principal: str, role: str) -> tuple[str, str]:
    """A bearer token (``cct_…``, valid 30 days) for ``principal`` with ``role``; stored as
    its SHA-256 only, so it is returned once (with its expiry)."""
    token = "cct_" + secrets.token_urlsafe(32)
    expires = rt.clock.now() + _TOKEN_TTL
    session.add(
        AccessTokenRow(
            token_hash=_hash(token),
            principal=principal,
            role=role,
            created_at=rt.clock.now(),
            expires_at=expires,
        )
    )
    return token, expires.isoformat()


def issue_admin_token(session: Session, rt: Runtime, name: str) -> tuple[str, str]:
    """A bearer token for an administrator (``commons admin token``); shown once."""
    return issue_token(session, rt, f"admin:{name}", "admin")


def prune_access_tokens(session: Session, before: datetime) -> int:
    """Delete the access tokens that expired before ``before`` (retention); how many went."""
    result = session.execute(delete(AccessTokenRow).where(AccessTokenRow.expires_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def authenticate(session: Session, rt: Runtime, authorization: str | None) -> Principal:
    """The caller behind an ``Authorization: Bearer cct_…`` header.

    Raises :class:`UnauthorizedError` (without saying why) for a missing, unknown or
    expired token.
    """
    if not authorization or not authorization.startswith("Bearer cct_"):
        raise UnauthorizedError("a bearer token is required")
    row = session.get(AccessTokenRow, _hash(authorization[len("Bearer ") :]))
    if row is None or utc(row.expires_at) <= rt.clock.now():
        raise UnauthorizedError("a bearer token is required")
    return Principal(row.principal, row.role)


def subject_of(rt: Runtime, token: str) -> str:
    """The pseudonym that stands for identity ``token`` as an event subject."""
    return rt.pseudonymizer.pseudonym("identity", token)


def actor_of(rt: Runtime, principal: Principal | None) -> str:
    """The pseudonym that stands for the caller as an event actor."""
    if principal is None:
        return rt.pseudonymizer.pseudonym("actor", "self-registration")
    return rt.pseudonymizer.pseudonym("actor", principal.subject)


def delegation_effective(row: DelegationRow, now: datetime) -> bool:
    """Whether a delegation is in force at ``now``: accepted by both parties, not revoked,
    not expired."""
    return (
        row.revoked_at is None
        and row.delegator_accepted_at is not None
        and row.delegatee_accepted_at is not None
        and utc(row.expires_at) > now
    )


def has_delegation(
    session: Session, delegator: str, delegatee: str, permission: Permission, now: datetime
) -> bool:
    """Whether ``delegatee`` may act for ``delegator`` with ``permission`` right now."""
    rows = session.scalars(
        select(DelegationRow).where(
            DelegationRow.delegatee_token == delegatee, DelegationRow.delegator_token == delegator
        )
    )
    return any(
        delegation_effective(r, now) and permission.value in json.loads(r.permissions) for r in rows
    )


def authorised_row(
    session: Session,
    principal: Principal,
    token: str,
    permission: Permission | None = None,
    now: datetime | None = None,
) -> IdentityRow:
    """:func:`authorise` for the identity domain's own modules: the identity's row."""
    # Object-level authorisation on every call: the identity itself, the owner of an
    # enterprise, an administrator, or — for ``permission`` — a live delegate.
    row = session.get(IdentityRow, token)
    if row is None:
        raise NotFoundError("no such identity")
    if (
        principal.is_admin
        or principal.subject == token
        or (row.owner_token and row.owner_token == principal.subject)
    ):
        return row
    if (
        permission is not None
        and now is not None
        and has_delegation(session, token, principal.subject, permission, now)
    ):
        return row
    raise NotFoundError("no such identity")  # the same answer: existence is not revealed


def authorise(
    session: Session,
    principal: Principal,
    token: str,
    permission: Permission | None = None,
    now: datetime | None = None,
) -> AuthorisedIdentity:
    """Object-level authorisation for other domains: the identity itself, the owner of an
    enterprise, an administrator, or — for ``permission`` at ``now`` — a live delegate.

    Raises :class:`NotFoundError` otherwise (existence is not revealed).
    """
    row = authorised_row(session, principal, token, permission, now)
    return AuthorisedIdentity(row.token, row.kind, row.owner_token)


def acting_for(
    session: Session, principal: Principal, token: str, permission: Permission, now: datetime
) -> str | None:
    """Whether ``principal`` may act *as* identity ``token`` under ``permission``, and how:
    ``"self"`` (the identity itself), ``"owner"`` (the owner of an enterprise acts for
    it), ``"delegate"`` (a live delegation from ``token`` carrying ``permission``) — or
    ``None``.

    Unlike :func:`authorise`, an administrator is *not* admitted: this is for decisions
    that only the subject may take (a consent), not for operator reads.  Raises nothing.
    """
    if principal.is_admin:
        return None
    if principal.subject == token:
        return "self"
    row = session.get(IdentityRow, token)
    if row is None:
        return None
    if row.owner_token and row.owner_token == principal.subject:
        return "owner"
    if has_delegation(session, token, principal.subject, permission, now):
        return "delegate"
    return None
