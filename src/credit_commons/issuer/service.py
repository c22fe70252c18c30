"""Use cases of the issuer domain: the credential catalogue.

Types live in the database; the built-in types (``CreditReadinessCredential``,
``KycCredential``, ``ShgMembershipCredential``, ``CommunityTierCredential``) are installed on
first use.
Changing the catalogue is for administrators and records ``credential_type.changed``.
"""

from __future__ import annotations

import json
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.core.attached import Attached
from credit_commons.core.cache import BoundedCache
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import NotFoundError
from credit_commons.events import EventDetails, Token, record_event
from credit_commons.identity import Principal, actor_of
from credit_commons.issuer.catalogue import (
    COMMUNITY_TIER,
    CREDIT_READINESS,
    KYC,
    SHG_MEMBERSHIP,
    CredentialType,
)
from credit_commons.issuer.errors import VctTaken
from credit_commons.issuer.models import CredentialTypeRow
from credit_commons.runtime import Runtime

__all__ = [
    "VCT_TTL",
    "CredentialTypeChanged",
    "get_type",
    "get_type_by_vct",
    "in_catalogue",
    "list_types",
    "put_type",
]

BUILT_IN = (CREDIT_READINESS, KYC, SHG_MEMBERSHIP, COMMUNITY_TIER)


class CredentialTypeChanged(EventDetails, event_type="credential_type.changed"):
    """A credential type was added to or changed in the catalogue."""

    name: Token
    disclosable: int


_TYPES_ENTRIES = 512
_TYPES_BYTES = 16 * 1024 * 1024


def _types_cache(rt: Runtime) -> BoundedCache[str, tuple[str, CredentialType, int]]:
    return _TYPES(rt)


# name -> (update time, validated type, bytes of its schema's JSON text)
_TYPES = Attached[Runtime, BoundedCache[str, tuple[str, CredentialType, int]]](
    lambda _rt: BoundedCache(
        max_entries=_TYPES_ENTRIES,
        max_bytes=_TYPES_BYTES,
        # A parsed, validated schema holds a few times the bytes of its JSON text.
        size=lambda name, value: len(name) + 4 * value[2],
    )
)
# True for a runtime that has seen every built-in type in the database.
_BUILT_INS_PRESENT = Attached[Runtime, bool](lambda _rt: False)

#: Seconds a ``vct`` found in the catalogue is taken as still there (:func:`in_catalogue`).
VCT_TTL: Final = 60.0
# The vcts this runtime found in the catalogue (a verifier asks for each presentation).
_VCTS = Attached[Runtime, BoundedCache[str, bool]](
    lambda _rt: BoundedCache(
        max_entries=_TYPES_ENTRIES,
        max_bytes=_TYPES_ENTRIES * 1024,
        size=lambda vct, _found: len(vct) + 64,
        ttl=VCT_TTL,
    )
)


def _from_row(row: CredentialTypeRow, rt: Runtime | None = None) -> CredentialType:
    # Building a type checks its schema against the JSON Schema meta-schema (milliseconds);
    # types change rarely, so the validated type of each name is cached with its update
    # time, and a changed type replaces it.
    cache = _types_cache(rt) if rt is not None else None
    version = str(row.updated_at)
    if cache is not None:
        cached = cache.get(row.name)
        if cached is not None and cached[0] == version:
            return cached[1]
    built = CredentialType(
        name=row.name,
        vct=row.vct,
        schema=json.loads(row.schema),
        disclosable=tuple(json.loads(row.disclosable)),
        default_validity_days=row.default_validity_days,
    )
    if cache is not None:
        cache.put(row.name, (version, built, len(row.schema)))
    return built


def _install_built_ins(session: Session, rt: Runtime) -> None:
    # Once this process has seen every built-in type in the database, it stops looking
    # (types are never deleted).  A call that installs one looks again next time, since its
    # transaction may still roll back.
    if _BUILT_INS_PRESENT.peek(rt):
        return
    # A built-in whose vct a type of another name already has (an administrator defined
    # one before the platform built it in) is not installed: that type stays the vct's.
    missing = [
        b
        for b in BUILT_IN
        if session.get(CredentialTypeRow, b.name) is None and _holder_of_vct(session, b.vct) is None
    ]
    for built_in in missing:
        _store(session, rt, built_in, rt.pseudonymizer.pseudonym("operator", "catalogue"))
    if not missing:
        _BUILT_INS_PRESENT.set(rt, True)


def _holder_of_vct(session: Session, vct: str) -> str | None:
    # The name of the type that has ``vct`` (a vct names one type: a unique column).
    return session.scalars(
        select(CredentialTypeRow.name).where(CredentialTypeRow.vct == vct)
    ).first()


def _store(session: Session, rt: Runtime, definition: CredentialType, actor: str) -> None:
    now = rt.clock.now()
    holder = _holder_of_vct(session, definition.vct)
    if holder is not None and holder != definition.name:
        raise VctTaken(f"the credential type {holder} has this vct", extra={"field": "vct"})
    row = session.get(CredentialTypeRow, definition.name)
    if row is None:
        row = CredentialTypeRow(name=definition.name, created_at=now)
        session.add(row)
    if row.vct != definition.vct:
        _VCTS(rt).clear()  # the old vct may leave the catalogue (in_catalogue)
    row.vct = definition.vct
    row.schema = json.dumps(dict(definition.schema), sort_keys=True)
    row.disclosable = json.dumps(list(definition.disclosable))
    row.default_validity_days = definition.default_validity_days
    row.updated_at = now
    session.flush()
    record_event(
        session,
        CredentialTypeChanged(name=definition.name, disclosable=len(definition.disclosable)),
        actor=actor,
        at=now,
        object=rt.objects.digest("credential_type", definition.name),
    )


def list_types(session: Session, rt: Runtime) -> list[CredentialType]:
    """Every credential type in the catalogue."""
    _install_built_ins(session, rt)
    return [
        _from_row(r, rt)
        for r in session.scalars(select(CredentialTypeRow).order_by(CredentialTypeRow.name))
    ]


def get_type(session: Session, rt: Runtime, name: str) -> CredentialType:
    """One credential type; raises :class:`NotFoundError`."""
    _install_built_ins(session, rt)
    row = session.get(CredentialTypeRow, name)
    if row is None:
        raise NotFoundError("no such credential type")
    return _from_row(row, rt)


def get_type_by_vct(session: Session, rt: Runtime, vct: str) -> CredentialType | None:
    """The type with this ``vct``, if any (one indexed query)."""
    _install_built_ins(session, rt)
    row = session.scalars(select(CredentialTypeRow).where(CredentialTypeRow.vct == vct)).first()
    return None if row is None else _from_row(row, rt)


def in_catalogue(session: Session, rt: Runtime, vct: str) -> bool:
    """Whether a type of the catalogue has this ``vct`` (what the verifier asks of each of
    this platform's credentials it is shown).

    A ``vct`` found is remembered for :data:`VCT_TTL` seconds, so a busy verifier does not
    read the catalogue for every presentation.  Types are never deleted; the only way one
    leaves is an administrator giving its type another ``vct`` (:func:`put_type`), which
    this process sees at once and another process within :data:`VCT_TTL`.  A ``vct`` not
    found is asked again every time.  Raises nothing but database errors.
    """
    known = _VCTS(rt)
    if known.get(vct):
        return True
    found = get_type_by_vct(session, rt, vct) is not None
    if found:
        known.put(vct, True)
    return found


def put_type(
    session: Session, rt: Runtime, principal: Principal, definition: JsonObject
) -> CredentialType:
    """Add or replace a credential type (administrators; others get :class:`NotFoundError`).

    Raises ``TypeInvalid`` for a definition the catalogue cannot accept and
    :class:`VctTaken` (a conflict) for a ``vct`` another type has.
    """
    if not principal.is_admin:
        raise NotFoundError("no such resource")
    schema = definition.get("schema")
    created = CredentialType(
        name=str(definition.get("name", "")),
        vct=str(definition.get("vct", "")),
        schema=schema if isinstance(schema, dict) else {},
        disclosable=tuple(str(p) for p in definition.get("disclosable", []) or []),
        default_validity_days=int(definition.get("default_validity_days", 365)),
    )
    _store(session, rt, created, actor_of(rt, principal))
    return created
