"""Use cases of the identity domain: register, read and update identities, and the identity
domain's own part of a data-subject export and erasure.

Personal fields and attributes are sealed by the vault under the identity's own subject
keys; identifiers are validated, normalised and stored only as pseudonyms keyed by the
KMS-held pepper (``p1:…``).  Every read is authorised against the caller
(``identity/auth.py``: the identity itself, the owner of an enterprise, or an
administrator); anything else is answered as "not found", so outsiders learn nothing.

Registration never looks at what others registered or erased: the identifiers a person
asserts are stored *unverified*, and many identities may hold the same one, so the answer
(status, body shape, work done) is the same for an unseen, a registered and an erased
identifier, and nobody can lock an owner out by registering their number first.  Only an
onboarding authority *binds* an identifier (``identity/onboarding.py``); bound identifiers
are unique, and only they are tombstoned at erasure.

Export and erasure are composed by ``privacy/``: this module offers the identity domain's
part of each (:func:`export_subject`, :func:`forget_subject`), for a caller ``privacy``
has already authorised.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import ConflictError, NotFoundError
from credit_commons.events import (
    EventDetails,
    EventRow,
    RecordedEvent,
    event_document,
    record_event,
)
from credit_commons.identity.auth import (
    Principal,
    actor_of,
    authorised_row,
    issue_token,
    subject_of,
)
from credit_commons.identity.delegations import export_delegations
from credit_commons.identity.identifiers import normalize
from credit_commons.identity.links import (
    identifier_pseudonym,
    identifier_view,
    links_of,
    tombstone_keys,
)
from credit_commons.identity.models import (
    UNVERIFIED,
    AccessTokenRow,
    DelegationRow,
    IdentifierLinkRow,
    IdentityRow,
    TombstoneRow,
)
from credit_commons.identity.schemas import (
    Attributes,
    ExportedDelegation,
    ExportedIdentifier,
    IdentifierView,
    IdentityCreate,
    IdentityKind,
    IdentityUpdate,
    IdentityView,
    Permission,
    ProfileView,
    Role,
    VerificationLevel,
)
from credit_commons.identity.schemas import IdentityCreated as IdentityCreatedView
from credit_commons.runtime import Runtime
from credit_commons.vault import DecryptionFailed

__all__ = [
    "ATTRIBUTES",
    "PROFILE",
    "IdentityCreated",
    "IdentityExport",
    "IdentityForgotten",
    "create_identity",
    "display_name",
    "existing_identities",
    "export_subject",
    "forget_subject",
    "get_identity",
    "get_profile",
    "has_role",
    "identity_exists",
    "identity_tokens_after",
    "open_attributes",
    "registered_did",
    "update_identity",
]

_BASE62 = string.ascii_letters + string.digits
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


@dataclass(frozen=True, slots=True)
class IdentityExport:
    """The identity domain's part of a data-subject export (``privacy/export.py``)."""

    subject: IdentityView
    profile: JsonObject
    """The personal fields as they were sealed (the members the identity has)."""
    attributes: JsonObject
    """The attributes as they were sealed."""
    identifiers: list[ExportedIdentifier]
    delegations: list[ExportedDelegation]
    events: list[JsonObject]
    """Every event about the subject, each as its event document."""


@dataclass(frozen=True)
class IdentityForgotten:
    """What the identity domain's part of an erasure removed (``privacy/erasure.py``)."""

    subject_keys_destroyed: int
    identifiers_unlinked: int


def _new_identity_token() -> str:
    return "idt_" + "".join(secrets.choice(_BASE62) for _ in range(22))


def identity_exists(session: Session, token: str) -> bool:
    """Whether identity ``token`` is registered (and not erased).  Raises nothing."""
    return session.get(IdentityRow, token) is not None


def has_role(session: Session, token: str, role: Role) -> bool:
    """Whether identity ``token`` is registered (and not erased) and holds ``role``.
    Raises nothing."""
    row = session.get(IdentityRow, token)
    return row is not None and role.value in json.loads(row.roles)


def existing_identities(session: Session, tokens: Iterable[str]) -> set[str]:
    """Which of ``tokens`` are registered identities (read 500 at a time)."""
    wanted = list(tokens)
    known: set[str] = set()
    for lo in range(0, len(wanted), 500):
        chunk = wanted[lo : lo + 500]
        known.update(session.scalars(select(IdentityRow.token).where(IdentityRow.token.in_(chunk))))
    return known


def identity_tokens_after(session: Session, after: str, limit: int) -> list[str]:
    """Up to ``limit`` identity tokens greater than ``after``, in order (to walk them all)."""
    return list(
        session.scalars(
            select(IdentityRow.token)
            .where(IdentityRow.token > after)
            .order_by(IdentityRow.token)
            .limit(limit)
        )
    )


def _check_owner(session: Session, request: IdentityCreate, principal: Principal | None) -> None:
    # An enterprise is registered by its owner (or an administrator).
    if request.kind is not IdentityKind.ENTERPRISE:
        return
    if request.owner_token is None:
        raise ConflictError("an enterprise needs its owner's identity token")
    # Only the owner (or an administrator) registers an enterprise, so an anonymous caller
    # gets the same 404 whether or not the owner token exists.
    if principal is None or not (principal.is_admin or principal.subject == request.owner_token):
        raise NotFoundError("no such owner identity")
    if session.get(IdentityRow, request.owner_token) is None:
        raise NotFoundError("no such owner identity")


def _seal(session: Session, rt: Runtime, token: str, purpose: str, data: bytes) -> bytes:
    return rt.vault.seal(
        session, data, subject=token, purpose=purpose, record=f"identity:{token}:{purpose}"
    )


def create_identity(
    session: Session, rt: Runtime, request: IdentityCreate, principal: Principal | None = None
) -> IdentityCreatedView:
    """Register an identity; returns its token, an access token for it (shown once) and its
    identifiers' kinds, all ``unverified`` (their binding members left unset: the answer
    omits them).

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
    _check_owner(session, request, principal)
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
    row.profile_sealed = _seal(
        session, rt, token, PROFILE, request.profile.model_dump_json(exclude_none=True).encode()
    )
    row.attributes_sealed = _seal(
        session,
        rt,
        token,
        ATTRIBUTES,
        request.attributes.model_dump_json(exclude_none=True).encode(),
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
    return IdentityCreatedView(
        identity_token=token,
        access_token=access_token,
        expires_at=expires,
        event_id=event.id,
        identifiers=[
            IdentifierView(kind=kind.value, status=UNVERIFIED) for kind in sorted(pseudonyms)
        ],
    )


def _metadata(session: Session, row: IdentityRow) -> IdentityView:
    return IdentityView(
        identity_token=row.token,
        kind=row.kind,
        roles=json.loads(row.roles),
        verification_level=row.verification_level,
        owner_token=row.owner_token,
        created_at=utc(row.created_at).isoformat(),
        identifiers=[identifier_view(link) for link in links_of(session, row.token)],
    )


def get_identity(session: Session, rt: Runtime, principal: Principal, token: str) -> IdentityView:
    """Identity metadata (no personal data): kind, roles, verification level, and each
    identifier's kind and binding (attesting authority, evidence digest).  Raises
    :class:`NotFoundError` when the caller may not see it."""
    del rt
    return _metadata(session, authorised_row(session, principal, token))


def _open(session: Session, rt: Runtime, row: IdentityRow, purpose: str) -> JsonObject:
    # The sealed document as it was stored (the model's members that were not None).
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
    opened: JsonObject = json.loads(data)
    return opened


def get_profile(session: Session, rt: Runtime, principal: Principal, token: str) -> ProfileView:
    """The identity's personal fields, opened from the vault (also for a delegate holding
    ``read:profile``); the fields it never had are left unset."""
    row = authorised_row(session, principal, token, Permission.READ_PROFILE, rt.clock.now())
    return ProfileView.model_validate(_open(session, rt, row, PROFILE))


def display_name(session: Session, rt: Runtime, token: str) -> str | None:
    """The name identity ``token`` registered in its profile, opened from the vault, or
    ``None`` (an unknown identity, or one without a readable profile).  For a service that
    names the identity to someone it acted for (the field agent of an assisted consent);
    no authorisation of its own: never answer it to a caller who asked for ``token``."""
    row = session.get(IdentityRow, token)
    if row is None:
        return None
    try:
        name = _open(session, rt, row, PROFILE).get("name")
    except DecryptionFailed:
        return None
    return name if isinstance(name, str) and name else None


def registered_did(session: Session, rt: Runtime, token: str) -> str | None:
    """The DID identity ``token`` registered in its profile (its holder key), or ``None``
    — also when the identity's keys are gone already, so its profile cannot be read (a
    restored backup whose subject was erased after it: ``commons privacy restore`` deleted
    the keys before erasing it again).  Raises :class:`NotFoundError` for an unknown
    identity."""
    row = session.get(IdentityRow, token)
    if row is None:
        raise NotFoundError("no such identity")
    if row.profile_sealed is not None and not rt.vault.has_keys(session, row.token):
        return None
    did = _open(session, rt, row, PROFILE).get("did")
    return did if isinstance(did, str) else None


def open_attributes(
    session: Session, rt: Runtime, principal: Principal, token: str, now: datetime
) -> Attributes:
    """The identity's sealed attributes, opened (for the identity, its owner, an
    administrator or a delegate holding ``read:profile``); raises :class:`NotFoundError`
    for anyone else."""
    row = authorised_row(session, principal, token, Permission.READ_PROFILE, now)
    return Attributes.model_validate(_open(session, rt, row, ATTRIBUTES))


def update_identity(
    session: Session, rt: Runtime, principal: Principal, token: str, request: IdentityUpdate
) -> IdentityView:
    """Change roles and/or the verification level (administrators only; others get
    :class:`NotFoundError`)."""
    row = authorised_row(session, principal, token)
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


# -- the identity domain's part of export and erasure (composed by privacy/) ---------------


def export_subject(session: Session, rt: Runtime, token: str) -> IdentityExport:
    """The identity domain's part of a data-subject export: metadata, profile and attributes
    (opened from the vault), identifiers (kind, binding, pseudonym), delegations on either
    side, and every event about the subject.

    ``privacy.export`` authorises the caller, composes it with the other domains' parts and
    records ``subject.exported``.  Raises :class:`NotFoundError` for an unknown identity.
    """
    row = session.get(IdentityRow, token)
    if row is None:
        raise NotFoundError("no such identity")
    events = session.scalars(
        select(EventRow).where(EventRow.subject == subject_of(rt, token)).order_by(EventRow.id)
    ).all()
    return IdentityExport(
        subject=_metadata(session, row),
        profile=_open(session, rt, row, PROFILE),
        attributes=_open(session, rt, row, ATTRIBUTES),
        identifiers=[
            ExportedIdentifier(**identifier_view(link).model_dump(), pseudonym=link.pseudonym)
            for link in links_of(session, token)
        ],
        delegations=export_delegations(session, token),
        events=[event_document(RecordedEvent.from_row(e)) for e in events],
    )


def forget_subject(session: Session, rt: Runtime, token: str) -> IdentityForgotten:
    """The identity domain's part of an erasure: destroy the subject's vault keys
    (crypto-shredding), delete their identifier links, tokens, delegations and identity
    row, and write tombstones.

    ``privacy.erasure`` authorises the caller, composes it with the other domains' parts
    and records ``subject.erased``; events already in the log stay (pseudonyms and hashes
    only, and nothing links those to the person any more).  Raises
    :class:`NotFoundError` for an unknown identity.
    """
    row = session.get(IdentityRow, token)
    if row is None:
        raise NotFoundError("no such identity")
    links = links_of(session, token)
    destroyed = rt.vault.shred(session, token)
    now = rt.clock.now()
    # The token's tombstone and keyed hashes of the *bound* pseudonyms (identity/links.py):
    # they stop re-issuing to the token and binding those identifiers again.
    tombstones = tombstone_keys(rt, token, links)
    session.execute(delete(IdentifierLinkRow).where(IdentifierLinkRow.identity_token == token))
    session.execute(delete(AccessTokenRow).where(AccessTokenRow.principal == token))
    session.execute(
        delete(DelegationRow).where(
            or_(DelegationRow.delegator_token == token, DelegationRow.delegatee_token == token)
        )
    )
    session.delete(row)
    for key in tombstones:
        session.merge(TombstoneRow(key=key, created_at=now))
    return IdentityForgotten(subject_keys_destroyed=destroyed, identifiers_unlinked=len(links))
