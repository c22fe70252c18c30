"""Use cases of the identity domain: register, read, export and erase identities.

Personal fields and attributes are sealed by the vault under the identity's own subject
keys; identifiers are validated, normalised and stored only as pseudonyms keyed by the
KMS-held pepper (``p1:…``).  Every read, export and erasure is authorised against the
caller (the identity itself, the owner of an enterprise, or an administrator); anything
else is answered as "not found", so outsiders learn nothing.

Registration never looks at what others registered or erased: the identifiers a person
asserts are stored *unverified*, and many identities may hold the same one, so the answer
(status, body shape, work done) is the same for an unseen, a registered and an erased
identifier, and nobody can lock an owner out by registering their number first.  Only an
onboarding authority *binds* an identifier (``identity/onboarding.py``); bound identifiers
are unique, and only they are tombstoned at erasure.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.encoding import b64url_encode
from credit_commons.core.errors import ConflictError, NotFoundError, UnauthorizedError
from credit_commons.events import (
    EventDetails,
    EventRow,
    RecordedEvent,
    event_document,
    record_event,
)
from credit_commons.identity.identifiers import IdentifierKind, normalize
from credit_commons.identity.models import (
    BOUND,
    UNVERIFIED,
    AccessTokenRow,
    DelegationRow,
    IdentifierLinkRow,
    IdentityRow,
    TombstoneRow,
)
from credit_commons.identity.predicates import PredicateRequest, evaluate, sign_attestation
from credit_commons.identity.schemas import (
    IdentityCreate,
    IdentityKind,
    IdentityUpdate,
    Permission,
    Role,
    VerificationLevel,
)
from credit_commons.keys import service as key_service
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.store import StoredSigner
from credit_commons.privacy.models import DsrRequestRow
from credit_commons.runtime import Runtime

__all__ = [
    "IdentityCreated",
    "Principal",
    "SubjectErased",
    "SubjectExported",
    "acting_for",
    "actor_of",
    "attest",
    "attestation_signer",
    "authenticate",
    "authorise",
    "create_identity",
    "erase_identity",
    "export_identity",
    "get_identity",
    "identifier_pseudonym",
    "identifier_tombstoned",
    "identifier_view",
    "is_tombstoned",
    "issue_admin_token",
    "issue_token",
    "subject_of",
    "update_identity",
]

_BASE62 = string.ascii_letters + string.digits
_TOKEN_TTL = timedelta(days=30)
PROFILE, ATTRIBUTES = "profile", "attributes"


class IdentityCreated(EventDetails, event_type="identity.created"):
    """An identity was registered."""

    kind: IdentityKind
    roles: tuple[Role, ...]
    identifiers: int


class IdentityUpdated(EventDetails, event_type="identity.updated"):
    """An identity's roles or verification level changed."""

    roles: tuple[Role, ...]
    verification_level: VerificationLevel


class AttestationIssued(EventDetails, event_type="identity.attested"):
    """A signed predicate attestation (booleans only) was issued about the subject."""

    claims: int


class SubjectExported(EventDetails, event_type="subject.exported"):
    """A data subject's data was exported to them."""

    sections: int


class SubjectErased(EventDetails, event_type="subject.erased"):
    """A data subject was erased: keys destroyed, links deleted, tombstones written."""

    subject_keys_destroyed: int
    identifiers_unlinked: int


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an identity (``idt_…``) or an administrator."""

    subject: str
    role: str

    @property
    def is_admin(self) -> bool:
        """Whether the caller is an administrator."""
        return self.role == "admin"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_identity_token() -> str:
    return "idt_" + "".join(secrets.choice(_BASE62) for _ in range(22))


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


def identifier_pseudonym(rt: Runtime, kind: IdentifierKind, canonical: str) -> str:
    """The keyed pseudonym (``p1:…``) of an identifier in its canonical spelling."""
    mac = rt.vault.kms.hmac(f"{kind.value}\x00{canonical}".encode(), label="identifier")
    return "p1:" + b64url_encode(mac)


def _tombstone_key(rt: Runtime, what: str) -> str:
    return rt.vault.kms.hmac(what.encode(), label="tombstone").hex()


def identifier_tombstoned(session: Session, rt: Runtime, pseudonym: str) -> bool:
    """Whether the identifier behind ``pseudonym`` was bound to a subject since erased."""
    return session.get(TombstoneRow, _tombstone_key(rt, f"link\x00{pseudonym}")) is not None


def identifier_view(link: IdentifierLinkRow) -> dict[str, Any]:
    """What the platform says about one of an identity's identifiers (no value, no
    pseudonym): its kind, ``unverified`` or ``bound``, and for a bound one the attesting
    authority, the keyed digest of its evidence reference and when it was bound."""
    return {
        "kind": link.kind,
        "status": link.status,
        "authority_id": link.authority_id,
        "evidence_digest": link.evidence_digest,
        "bound_at": utc(link.bound_at).isoformat() if link.bound_at is not None else None,
    }


def _links(session: Session, token: str) -> list[IdentifierLinkRow]:
    return list(
        session.scalars(
            select(IdentifierLinkRow)
            .where(IdentifierLinkRow.identity_token == token)
            .order_by(IdentifierLinkRow.kind, IdentifierLinkRow.pseudonym)
        )
    )


def subject_of(rt: Runtime, token: str) -> str:
    """The pseudonym that stands for identity ``token`` as an event subject."""
    return rt.pseudonymizer.pseudonym("identity", token)


def actor_of(rt: Runtime, principal: Principal | None) -> str:
    """The pseudonym that stands for the caller as an event actor."""
    if principal is None:
        return rt.pseudonymizer.pseudonym("actor", "self-registration")
    return rt.pseudonymizer.pseudonym("actor", principal.subject)


def create_identity(
    session: Session, rt: Runtime, request: IdentityCreate, principal: Principal | None = None
) -> dict[str, Any]:
    """Register an identity; returns its token, an access token for it (shown once) and its
    identifiers' kinds, all ``unverified``.

    The identifiers are only checked for form: whether anybody else registered, bound or
    erased the same number changes nothing in the answer.  An enterprise is registered by
    its owner (or an administrator).  Raises ``IdentifierInvalid`` for a malformed
    identifier, :class:`ConflictError` for an enterprise without an owner, and
    :class:`NotFoundError` for an owner the caller is not (or that does not exist).
    """
    pseudonyms = {
        kind: identifier_pseudonym(rt, kind, normalize(kind, value))
        for kind, value in request.identifiers.items()
    }
    if request.kind is IdentityKind.ENTERPRISE:
        if request.owner_token is None:
            raise ConflictError("an enterprise needs its owner's identity token")
        # Only the owner (or an administrator) registers an enterprise, so an anonymous
        # caller gets the same 404 whether or not the owner token exists.
        if principal is None or not (
            principal.is_admin or principal.subject == request.owner_token
        ):
            raise NotFoundError("no such owner identity")
        if session.get(IdentityRow, request.owner_token) is None:
            raise NotFoundError("no such owner identity")
    token = _new_identity_token()
    now = rt.clock.now()
    row = IdentityRow(
        token=token,
        kind=request.kind.value,
        roles=json.dumps(sorted({r.value for r in request.roles})),
        verification_level="none",
        owner_token=request.owner_token if request.kind is IdentityKind.ENTERPRISE else None,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    row.profile_sealed = rt.vault.seal(
        session,
        request.profile.model_dump_json(exclude_none=True).encode(),
        subject=token,
        purpose=PROFILE,
        record=f"identity:{token}:profile",
    )
    row.attributes_sealed = rt.vault.seal(
        session,
        request.attributes.model_dump_json(exclude_none=True).encode(),
        subject=token,
        purpose=ATTRIBUTES,
        record=f"identity:{token}:attributes",
    )
    # Unverified links: no uniqueness, no tombstone check (a tombstone is consulted only
    # when an authority binds), so nothing here depends on other identities.
    for kind, pseudonym in pseudonyms.items():
        session.add(
            IdentifierLinkRow(
                identity_token=token,
                pseudonym=pseudonym,
                kind=kind.value,
                status=UNVERIFIED,
                created_at=now,
            )
        )
    access_token, expires = issue_token(session, rt, token, "identity")
    event = record_event(
        session,
        IdentityCreated(
            kind=request.kind, roles=tuple(sorted(set(request.roles))), identifiers=len(pseudonyms)
        ),
        actor=actor_of(rt, principal),
        at=now,
        subject=subject_of(rt, token),
        object=rt.objects.digest("identity", token),
    )
    return {
        "identity_token": token,
        "access_token": access_token,
        "expires_at": expires,
        "event_id": event.id,
        "identifiers": [{"kind": kind.value, "status": UNVERIFIED} for kind in sorted(pseudonyms)],
    }


def _authorised(
    session: Session,
    principal: Principal,
    token: str,
    permission: Permission | None = None,
    now: datetime | None = None,
) -> IdentityRow:
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
    if permission is not None and now is not None:
        from credit_commons.identity.delegations import has_delegation  # noqa: PLC0415 - cycle

        if has_delegation(session, token, principal.subject, permission, now):
            return row
    raise NotFoundError("no such identity")  # the same answer: existence is not revealed


def authorise(
    session: Session,
    principal: Principal,
    token: str,
    permission: Permission | None = None,
    now: datetime | None = None,
) -> IdentityRow:
    """Object-level authorisation for other domains: the identity itself, the owner of an
    enterprise, an administrator, or — for ``permission`` at ``now`` — a live delegate.

    Raises :class:`NotFoundError` otherwise (existence is not revealed).
    """
    return _authorised(session, principal, token, permission, now)


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
    from credit_commons.identity.delegations import has_delegation  # noqa: PLC0415 - cycle

    if has_delegation(session, token, principal.subject, permission, now):
        return "delegate"
    return None


def _metadata(session: Session, row: IdentityRow) -> dict[str, Any]:
    return {
        "identity_token": row.token,
        "kind": row.kind,
        "roles": json.loads(row.roles),
        "verification_level": row.verification_level,
        "owner_token": row.owner_token,
        "created_at": utc(row.created_at).isoformat(),
        "identifiers": [identifier_view(link) for link in _links(session, row.token)],
    }


def get_identity(session: Session, rt: Runtime, principal: Principal, token: str) -> dict[str, Any]:
    """Identity metadata (no personal data): kind, roles, verification level, and each
    identifier's kind and binding (attesting authority, evidence digest).  Raises
    :class:`NotFoundError` when the caller may not see it."""
    del rt
    return _metadata(session, _authorised(session, principal, token))


def _open(session: Session, rt: Runtime, row: IdentityRow, purpose: str) -> dict[str, Any]:
    sealed = row.profile_sealed if purpose == PROFILE else row.attributes_sealed
    if sealed is None:
        return {}
    data = rt.vault.open(
        session,
        sealed,
        subject=row.token,
        purpose=purpose,
        record=f"identity:{row.token}:{purpose}",
    )
    opened: dict[str, Any] = json.loads(data)
    return opened


def get_profile(session: Session, rt: Runtime, principal: Principal, token: str) -> dict[str, Any]:
    """The identity's personal fields, opened from the vault (also for a delegate holding
    ``read:profile``)."""
    row = _authorised(session, principal, token, Permission.READ_PROFILE, rt.clock.now())
    return _open(session, rt, row, PROFILE)


def update_identity(
    session: Session, rt: Runtime, principal: Principal, token: str, request: IdentityUpdate
) -> dict[str, Any]:
    """Change roles and/or the verification level (administrators only; others get
    :class:`NotFoundError`)."""
    row = _authorised(session, principal, token)
    if not principal.is_admin:
        raise NotFoundError("no such identity")
    if request.roles is not None:
        row.roles = json.dumps(sorted({r.value for r in request.roles}))
    if request.verification_level is not None:
        row.verification_level = request.verification_level.value
    row.updated_at = rt.clock.now()
    record_event(
        session,
        IdentityUpdated(
            roles=tuple(Role(r) for r in json.loads(row.roles)),
            verification_level=VerificationLevel(row.verification_level),
        ),
        actor=actor_of(rt, principal),
        at=rt.clock.now(),
        subject=subject_of(rt, token),
        object=rt.objects.digest("identity", token),
    )
    return _metadata(session, row)


def is_tombstoned(session: Session, rt: Runtime, token: str) -> bool:
    """Whether ``token`` belongs to an erased subject (issuance must refuse it)."""
    return session.get(TombstoneRow, _tombstone_key(rt, f"identity\x00{token}")) is not None


ATTESTATION_KEY = "attestations"
_ATTESTATION_PLATFORM_KEY = key_service.PlatformKey(ATTESTATION_KEY, KeyType.ED25519, "attestation")


def attestation_signer(session: Session, rt: Runtime) -> StoredSigner:
    """The key-store key that signs predicate attestations (Ed25519, made on first use)."""
    return key_service.platform_signer(session, rt, _ATTESTATION_PLATFORM_KEY)


def attest(
    session: Session, rt: Runtime, principal: Principal, token: str, request: PredicateRequest
) -> dict[str, Any]:
    """Evaluate ``request``'s claims over the sealed attributes and return a signed JWT of
    the boolean results bound to the caller's nonce and audience — never the values.

    Allowed for the identity, its owner, an administrator or a delegate with
    ``read:profile``; everyone else gets :class:`NotFoundError`.
    """
    now = rt.clock.now()
    row = _authorised(session, principal, token, Permission.READ_PROFILE, now)
    results = evaluate(request, _open(session, rt, row, ATTRIBUTES), today=now.date())
    signer = attestation_signer(session, rt)
    jwt = sign_attestation(
        results,
        subject=token,
        request=request,
        issuer=rt.settings.public_url,
        signer=signer,
        kid=signer.kid,
        now=now,
    )
    record_event(
        session,
        AttestationIssued(claims=len(results)),
        actor=actor_of(rt, principal),
        at=now,
        subject=subject_of(rt, token),
        object=rt.objects.digest("attestation", jwt[-43:]),
    )
    return {
        "attestation": jwt,
        "results": [r.model_dump() for r in results],
        "all_satisfied": all(r.satisfied for r in results),
    }


def export_identity(
    session: Session, rt: Runtime, principal: Principal, token: str
) -> dict[str, Any]:
    """The identity domain's part of a data-subject export: metadata, profile and attributes
    (opened from the vault), identifiers (kind, binding, pseudonym), delegations on either
    side, and every event about the subject.

    ``privacy.export`` composes it with the other domains' parts and records
    ``subject.exported``.  Raises :class:`NotFoundError` when the caller is not the
    identity, the owner of an enterprise or an administrator.
    """
    row = _authorised(session, principal, token)
    events = session.scalars(
        select(EventRow).where(EventRow.subject == subject_of(rt, token)).order_by(EventRow.id)
    ).all()
    delegations = session.scalars(
        select(DelegationRow)
        .where(or_(DelegationRow.delegator_token == token, DelegationRow.delegatee_token == token))
        .order_by(DelegationRow.created_at, DelegationRow.id)
    )
    return {
        "subject": _metadata(session, row),
        "profile": _open(session, rt, row, PROFILE),
        "attributes": _open(session, rt, row, ATTRIBUTES),
        "identifiers": [
            {**identifier_view(link), "pseudonym": link.pseudonym}
            for link in _links(session, token)
        ],
        "delegations": [_delegation_view(d, token) for d in delegations],
        "events": [event_document(RecordedEvent.from_row(e)) for e in events],
    }


def _delegation_view(row: DelegationRow, token: str) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return utc(value).isoformat() if value is not None else None

    return {
        "id": row.id,
        "type": row.type,
        "role": "delegator" if row.delegator_token == token else "delegatee",
        "delegator_token": row.delegator_token,
        "delegatee_token": row.delegatee_token,
        "permissions": json.loads(row.permissions),
        "delegator_accepted_at": when(row.delegator_accepted_at),
        "delegatee_accepted_at": when(row.delegatee_accepted_at),
        "expires_at": utc(row.expires_at).isoformat(),
        "revoked": row.revoked_at is not None,
        "revoked_at": when(row.revoked_at),
        "created_at": utc(row.created_at).isoformat(),
    }


def erase_identity(
    session: Session, rt: Runtime, principal: Principal, token: str
) -> dict[str, Any]:
    """Erase a subject: destroy their vault keys (crypto-shredding), delete their identifier
    links, tokens and identity row, write tombstones, and record ``subject.erased``.

    Events already in the log stay: they hold only pseudonyms and hashes, and nothing links
    those to the person any more.
    """
    row = _authorised(session, principal, token)
    links = _links(session, token)
    destroyed = rt.vault.shred(session, token)
    now = rt.clock.now()
    tombstones = {_tombstone_key(rt, f"identity\x00{token}")}
    # Keyed hashes of the *bound* pseudonyms in the tombstone domain: they stop an
    # authority from binding those identifiers again, without keeping the pseudonyms.  An
    # unverified identifier leaves no tombstone: otherwise a squatter could register an
    # owner's number and erase themselves to block the owner for good.
    for link in links:
        if link.status == BOUND:
            tombstones.add(_tombstone_key(rt, f"link\x00{link.pseudonym}"))
    session.execute(delete(IdentifierLinkRow).where(IdentifierLinkRow.identity_token == token))
    session.execute(delete(AccessTokenRow).where(AccessTokenRow.principal == token))
    session.execute(delete(DsrRequestRow).where(DsrRequestRow.identity_token == token))
    session.execute(
        delete(DelegationRow).where(
            or_(DelegationRow.delegator_token == token, DelegationRow.delegatee_token == token)
        )
    )
    from credit_commons.consent.service import forget_subject  # noqa: PLC0415 - domain edge

    consents = forget_subject(session, token)
    session.delete(row)
    for key in tombstones:
        session.merge(TombstoneRow(key=key, created_at=now))
    event = record_event(
        session,
        SubjectErased(subject_keys_destroyed=destroyed, identifiers_unlinked=len(links)),
        actor=actor_of(rt, principal),
        at=now,
        subject=subject_of(rt, token),
        object=rt.objects.digest("identity", token),
    )
    return {
        "erased": True,
        "event_id": event.id,
        "subject_keys_destroyed": destroyed,
        "identifiers_unlinked": len(links),
        "consents_deleted": consents,
    }
