"""Use cases of the identity domain: register, read, export and erase identities.

Personal fields and attributes are sealed by the vault under the identity's own subject
keys; identifiers are validated, normalised and stored only as pseudonyms keyed by the
KMS-held pepper (``p1:…``).  Every read, export and erasure is authorised against the
caller (the identity itself, the owner of an enterprise, or an administrator); anything
else is answered as "not found", so outsiders learn nothing.
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
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.encoding import b64url_encode
from credit_commons.core.errors import ConflictError, NotFoundError, UnauthorizedError
from credit_commons.identity.identifiers import IdentifierKind, normalize
from credit_commons.identity.models import (
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
from credit_commons.ledger.events import (
    EventDetails,
    RecordedEvent,
    event_document,
    object_digest,
    record_event,
)
from credit_commons.ledger.models import EventRow
from credit_commons.privacy.models import DsrRequestRow
from credit_commons.runtime import Runtime

__all__ = [
    "IdentityCreated",
    "Principal",
    "SubjectErased",
    "SubjectExported",
    "actor_of",
    "attest",
    "attestation_signer",
    "authenticate",
    "authorise",
    "create_identity",
    "erase_identity",
    "export_identity",
    "get_identity",
    "is_tombstoned",
    "issue_admin_token",
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


def _issue(session: Session, rt: Runtime, principal: str, role: str) -> tuple[str, str]:
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
    return _issue(session, rt, f"admin:{name}", "admin")


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


def _identifier_pseudonym(rt: Runtime, kind: IdentifierKind, canonical: str) -> str:
    mac = rt.vault.kms.hmac(f"{kind.value}\x00{canonical}".encode(), label="identifier")
    return "p1:" + b64url_encode(mac)


def _tombstone_key(rt: Runtime, what: str) -> str:
    return rt.vault.kms.hmac(what.encode(), label="tombstone").hex()


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
    """Register an identity; returns its token and an access token for it (shown once).

    Raises ``IdentifierInvalid`` for a malformed identifier, :class:`ConflictError` for an
    identifier already linked or erased, :class:`NotFoundError` for an unknown owner.
    """
    pseudonyms = {
        kind: _identifier_pseudonym(rt, kind, normalize(kind, value))
        for kind, value in request.identifiers.items()
    }
    for kind, pseudonym in pseudonyms.items():
        if session.get(TombstoneRow, _tombstone_key(rt, f"link\x00{pseudonym}")):
            raise ConflictError("this identifier cannot be registered", extra={"field": kind.value})
    if request.kind is IdentityKind.ENTERPRISE:
        if request.owner_token is None:
            raise ConflictError("an enterprise needs its owner's identity token")
        owner = session.get(IdentityRow, request.owner_token)
        if owner is None or (
            principal is not None and not principal.is_admin and principal.subject != owner.token
        ):
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
    try:
        with session.begin_nested():
            for kind, pseudonym in pseudonyms.items():
                session.add(
                    IdentifierLinkRow(
                        pseudonym=pseudonym, kind=kind.value, identity_token=token, created_at=now
                    )
                )
            session.flush()
    except DbIntegrityError as e:
        raise ConflictError("an identifier is already registered to another identity") from e
    access_token, expires = _issue(session, rt, token, "identity")
    event = record_event(
        session,
        IdentityCreated(
            kind=request.kind, roles=tuple(sorted(set(request.roles))), identifiers=len(pseudonyms)
        ),
        actor=actor_of(rt, principal),
        at=now,
        subject=subject_of(rt, token),
        object=object_digest("identity", token),
    )
    return {
        "identity_token": token,
        "access_token": access_token,
        "expires_at": expires,
        "event_id": event.id,
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


def _metadata(row: IdentityRow) -> dict[str, Any]:
    return {
        "identity_token": row.token,
        "kind": row.kind,
        "roles": json.loads(row.roles),
        "verification_level": row.verification_level,
        "owner_token": row.owner_token,
        "created_at": utc(row.created_at).isoformat(),
    }


def get_identity(session: Session, rt: Runtime, principal: Principal, token: str) -> dict[str, Any]:
    """Identity metadata (no personal data); raises :class:`NotFoundError` when the caller
    may not see it."""
    del rt
    return _metadata(_authorised(session, principal, token))


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
        object=object_digest("identity", token),
    )
    return _metadata(row)


def is_tombstoned(session: Session, rt: Runtime, token: str) -> bool:
    """Whether ``token`` belongs to an erased subject (issuance must refuse it)."""
    return session.get(TombstoneRow, _tombstone_key(rt, f"identity\x00{token}")) is not None


ATTESTATION_KEY = "attestations"


def attestation_signer(session: Session, rt: Runtime) -> StoredSigner:
    """The key-store key that signs predicate attestations (Ed25519, made on first use)."""
    return key_service.signer_or_create(
        session,
        rt.key_store,
        rt.clock,
        name=ATTESTATION_KEY,
        key_type=KeyType.ED25519,
        actor=rt.operator_actor("attestation"),
    )


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
        object=object_digest("attestation", jwt[-43:]),
    )
    return {
        "attestation": jwt,
        "results": [r.model_dump() for r in results],
        "all_satisfied": all(r.satisfied for r in results),
    }


def export_identity(
    session: Session, rt: Runtime, principal: Principal, token: str
) -> dict[str, Any]:
    """Everything held on the subject (``credit-commons-export/v1``), and a
    ``subject.exported`` event."""
    row = _authorised(session, principal, token)
    subject = subject_of(rt, token)
    links = session.scalars(
        select(IdentifierLinkRow).where(IdentifierLinkRow.identity_token == token)
    ).all()
    events = session.scalars(
        select(EventRow).where(EventRow.subject == subject).order_by(EventRow.id)
    ).all()
    documents = [event_document(RecordedEvent.from_row(e)) for e in events]
    export: dict[str, Any] = {
        "format": "credit-commons-export/v1",
        "subject": _metadata(row),
        "profile": _open(session, rt, row, PROFILE),
        "attributes": _open(session, rt, row, ATTRIBUTES),
        "identifiers": [{"kind": link.kind, "pseudonym": link.pseudonym} for link in links],
        "delegations": [
            {
                "id": d.id,
                "type": d.type,
                "delegator_token": d.delegator_token,
                "delegatee_token": d.delegatee_token,
                "permissions": json.loads(d.permissions),
                "expires_at": utc(d.expires_at).isoformat(),
                "revoked": d.revoked_at is not None,
            }
            for d in session.scalars(
                select(DelegationRow).where(
                    or_(
                        DelegationRow.delegator_token == token,
                        DelegationRow.delegatee_token == token,
                    )
                )
            )
        ],
        "credentials": [],
        "consents": [],
        "access_history": [
            {"at": d["at"], "type": d["type"], "event_id": d["id"], "details": d["details"]}
            for d in documents
            if d["type"].startswith("access.")
        ],
        "events": documents,
    }
    record_event(
        session,
        SubjectExported(sections=len(export) - 1),
        actor=actor_of(rt, principal),
        at=rt.clock.now(),
        subject=subject,
        object=object_digest("identity", token),
    )
    return export


def erase_identity(
    session: Session, rt: Runtime, principal: Principal, token: str
) -> dict[str, Any]:
    """Erase a subject: destroy their vault keys (crypto-shredding), delete their identifier
    links, tokens and identity row, write tombstones, and record ``subject.erased``.

    Events already in the log stay: they hold only pseudonyms and hashes, and nothing links
    those to the person any more.
    """
    row = _authorised(session, principal, token)
    links = session.scalars(
        select(IdentifierLinkRow).where(IdentifierLinkRow.identity_token == token)
    ).all()
    destroyed = rt.vault.shred(session, token)
    now = rt.clock.now()
    tombstones = {_tombstone_key(rt, f"identity\x00{token}")}
    # Keyed hashes of the pseudonyms in the tombstone domain: they block re-registration of
    # the same identifiers without keeping the pseudonyms themselves.
    for link in links:
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
        object=object_digest("identity", token),
    )
    return {
        "erased": True,
        "event_id": event.id,
        "subject_keys_destroyed": destroyed,
        "identifiers_unlinked": len(links),
        "consents_deleted": consents,
    }
