"""Status lists in the database: random indexes, revoke/suspend/reinstate, signed lists.

Two kinds (DESIGN.md — they are *not* the same bit order):

* ``token``: IETF Token Status List, 2 bits per credential (VALID, INVALID, SUSPENDED),
  LSB-first, zlib; served as a ``statuslist+jwt``, or as a ``statuslist+cwt`` (COSE_Sign1,
  draft-ietf-oauth-status-list §5.2) to a client that asks for it (used by SD-JWT VCs);
* ``bitstring``: W3C Bitstring Status List, 1 bit (revocation), MSB-first, gzip; served as a
  VCDM 2.0 ``BitstringStatusListCredential`` secured as a ``vc+jwt`` (VC-JOSE-COSE: the
  payload is the credential) — used by ``vc+jwt`` credentials and by the ``jwt_vc_json``
  ones issued before them.

Indexes are drawn uniformly at random among the free ones (so an index says nothing about
issuance order) from lists filled to at most 80 %; a new list of 131,072 entries is opened
when none has room.  Allocation and changes lock the list's row.  Rendered lists are signed
by the issuer key and cached per version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.core.attached import Attached
from credit_commons.core.cache import BoundedCache, text_size
from credit_commons.core.errors import NotFoundError, ValidationError
from credit_commons.core.ids import new_id
from credit_commons.formats.bitstring_status_list import (
    BitstringStatusList,
    status_list_credential,
)
from credit_commons.formats.jws import sign_compact
from credit_commons.formats.status_list import StatusList, TokenStatus
from credit_commons.formats.status_list_cwt import CWT_MEDIA_TYPE, issue_status_list_cwt
from credit_commons.formats.vc_jose import secure_credential
from credit_commons.issuer.errors import StatusFormatUnavailable, StatusTransitionInvalid
from credit_commons.issuer.models import StatusListRow
from credit_commons.issuer.status_index import allocate_random_indexes
from credit_commons.keys import KeyNotFound, KeyType, KeyVersion, PublicKey, StoredSigner
from credit_commons.keys import service as key_service
from credit_commons.runtime import Runtime

__all__ = [
    "CWT_MEDIA_TYPE",
    "ISSUER_KEY",
    "LIST_SIZE",
    "RenderedList",
    "StatusKind",
    "StatusRef",
    "allocate",
    "allocate_many",
    "get_status",
    "issuer_public_key",
    "issuer_signer",
    "render",
    "render_cache",
    "set_status",
    "status_uri",
]

ISSUER_KEY = "issuer"
LIST_SIZE = 131_072
_FILL_LIMIT = 0.8
_TTL = 300
# The latest rendering of each list, by list id: a new version replaces the old one, so the
# cache never holds more than one token per list, and at most this many lists and bytes.
_CACHE_ENTRIES = 1024
_CACHE_BYTES = 32 * 1024 * 1024


class StatusKind(StrEnum):
    """Which status list format."""

    TOKEN = "token"  # noqa: S105 - a list format, not a secret
    BITSTRING = "bitstring"


@dataclass(frozen=True)
class StatusRef:
    """Where a credential's status lives."""

    list_id: str
    index: int
    kind: StatusKind


@dataclass(frozen=True)
class RenderedList:
    """A signed status list and how to serve it: a compact JWS (``str``) or a CWT
    (``bytes``)."""

    token: str | bytes
    media_type: str
    version: int
    issued_at: int


def issuer_signer(session: Session, rt: Runtime) -> StoredSigner:
    """The issuer's signing key (key store ``issuer``, made on first use with the type
    ``COMMONS_ISSUER_KEY_TYPE`` names: Ed25519 by default, P-256 for ES256)."""
    return key_service.platform_signer(session, rt, _issuer_key(rt))


def issuer_key_versions(session: Session, rt: Runtime) -> list[KeyVersion]:
    """Every version of the issuer key (made on first use, as by :func:`issuer_signer`)."""
    return key_service.platform_key_versions(session, rt, _issuer_key(rt))


# The issuer key's versions by kid, as verifiers look them up: a kid is the RFC 7638
# thumbprint of its public key and versions are never deleted, so an entry never goes stale.
_PUBLIC_KEYS = Attached[Runtime, BoundedCache[str, PublicKey]](
    lambda _rt: BoundedCache(
        max_entries=256, max_bytes=256 * 1024, size=lambda kid, _key: text_size(kid) + 200
    )
)


def issuer_public_key(session: Session, rt: Runtime, kid: object) -> PublicKey | None:
    """The public key of the issuer key's version ``kid`` (a JOSE header's ``kid``), or
    ``None`` when the issuer key has no such version (or does not exist yet).

    The versions are read from the key store once and remembered by kid; a kid not found
    is read again each time, so a rotation by another process is seen at once.  Raises
    nothing but database errors.
    """
    if not isinstance(kid, str):
        return None
    cache = _PUBLIC_KEYS(rt)
    key = cache.get(kid)
    if key is not None:
        return key
    try:
        versions = rt.key_store.versions(session, ISSUER_KEY)
    except KeyNotFound:
        return None
    for version in versions:
        cache.put(version.kid, version.public_key)
    return next((v.public_key for v in versions if v.kid == kid), None)


def _issuer_key(rt: Runtime) -> key_service.PlatformKey:
    return key_service.PlatformKey(ISSUER_KEY, KeyType(rt.settings.issuer_key_type), "issuer")


def status_uri(rt: Runtime, list_id: str) -> str:
    """The URL a verifier fetches a list from."""
    return f"{rt.settings.public_url.rstrip('/')}/status-lists/{list_id}"


def _new_list(session: Session, rt: Runtime, kind: StatusKind) -> StatusListRow:
    bits = 2 if kind is StatusKind.TOKEN else 1
    data = (
        StatusList.new(LIST_SIZE, bits).to_bytes()
        if kind is StatusKind.TOKEN
        else bytes(LIST_SIZE // 8)
    )
    row = StatusListRow(
        id=new_id("sl"),
        kind=kind.value,
        bits=bits,
        size=LIST_SIZE,
        data=data,
        used=bytes(LIST_SIZE // 8),
        allocated=0,
        version=1,
        updated_at=rt.clock.now(),
    )
    session.add(row)
    session.flush()
    return row


def allocate(session: Session, rt: Runtime, kind: StatusKind) -> StatusRef:
    """A fresh random index in a list of ``kind`` (opening a new list when all are full)."""
    return allocate_many(session, rt, kind, 1)[0]


def allocate_many(session: Session, rt: Runtime, kind: StatusKind, count: int) -> list[StatusRef]:
    """``count`` fresh random indexes in lists of ``kind``: each list is locked and updated
    once for all the indexes it takes; lists fill to 80 %, then the next (or a new) one."""
    limit = int(LIST_SIZE * _FILL_LIMIT)
    refs: list[StatusRef] = []
    while len(refs) < count:
        row = session.scalars(
            select(StatusListRow)
            .where(StatusListRow.kind == kind.value, StatusListRow.allocated < limit)
            .order_by(StatusListRow.id)
            .limit(1)
            .with_for_update()
        ).first()
        if row is None:
            row = _new_list(session, rt, kind)
        used = bytearray(row.used)
        take = min(count - len(refs), limit - row.allocated)
        refs += [StatusRef(row.id, i, kind) for i in allocate_random_indexes(row.size, used, take)]
        row.used, row.allocated = bytes(used), row.allocated + take
        session.flush()
    return refs


def _locked(session: Session, list_id: str) -> StatusListRow:
    row = session.scalars(
        select(StatusListRow).where(StatusListRow.id == list_id).with_for_update()
    ).first()
    if row is None:
        raise NotFoundError("no such status list")
    return row


def set_status(
    session: Session,
    rt: Runtime,
    ref: StatusRef,
    status: TokenStatus,
    *,
    allowed_from: frozenset[TokenStatus] | None = None,
) -> None:
    """Set a credential's status.  A bitstring (revocation-only) list takes VALID or INVALID.

    ``allowed_from`` (when given) is the set of current statuses the change applies to; it
    is checked under the list's row lock, so two racing changes cannot both pass.

    A revoked entry stays revoked whatever ``allowed_from`` says: the IETF Token Status
    List ("Status Types") defines 0x01 INVALID as a revocation and only 0x02 SUSPENDED as
    reversible, and a W3C Bitstring Status List whose ``statusPurpose`` is ``revocation``
    cannot be undone.  The issuer's service states its transitions too; this is the rule
    where the bits are written, so no caller can undo a revocation.

    Raises :class:`ValidationError` for SUSPENDED on a bitstring list and
    :class:`StatusTransitionInvalid` for a current status outside ``allowed_from`` or any
    status other than INVALID for a revoked entry.
    """
    row = _locked(session, ref.list_id)
    entries: BitstringStatusList | StatusList
    if row.kind == StatusKind.BITSTRING:
        if status not in (TokenStatus.VALID, TokenStatus.INVALID):
            raise ValidationError("a revocation bitstring cannot express suspension")
        entries = BitstringStatusList(bytes(row.data))
    else:
        entries = StatusList(row.bits, bytes(row.data))
    current = entries.get(ref.index)
    if current == TokenStatus.INVALID and status != TokenStatus.INVALID:
        raise StatusTransitionInvalid("a revoked credential stays revoked")
    if allowed_from is not None and current not in allowed_from:
        raise StatusTransitionInvalid(
            f"a {TokenStatus(current).name.lower()} credential cannot become {status.name.lower()}"
        )
    entries.set(ref.index, int(status))
    row.data = entries.to_bytes()
    row.version += 1
    row.updated_at = rt.clock.now()


def get_status(session: Session, ref: StatusRef) -> TokenStatus:
    """A credential's current status."""
    row = session.get(StatusListRow, ref.list_id)
    if row is None:
        raise NotFoundError("no such status list")
    if row.kind == StatusKind.BITSTRING:
        return TokenStatus(BitstringStatusList(bytes(row.data)).get(ref.index))
    return TokenStatus(StatusList(row.bits, bytes(row.data)).get(ref.index))


def render(session: Session, rt: Runtime, list_id: str, *, cwt: bool = False) -> RenderedList:
    """The signed list, rendered again when its version changed or the last rendering is
    older than its ``ttl`` (so the ``exp`` a relying party sees is never near), cached in
    between.  With ``cwt``, a Token Status List in CWT form.

    Raises :class:`NotFoundError`, and :class:`StatusFormatUnavailable` for the CWT form of
    a bitstring list (a W3C list is a credential, which has no CWT form here).
    """
    row = session.get(StatusListRow, list_id)
    if row is None:
        raise NotFoundError("no such status list")
    if cwt and row.kind != StatusKind.TOKEN:
        raise StatusFormatUnavailable("a W3C Bitstring Status List is served as vc+jwt only")
    cache = render_cache(rt)
    key = f"{row.id} cwt" if cwt else row.id
    now = int(rt.clock.now().timestamp())
    cached = cache.get(key)
    if cached is not None and cached.version == row.version and now - cached.issued_at < _TTL:
        return cached
    signer = issuer_signer(session, rt)
    uri = status_uri(rt, row.id)
    rendered: RenderedList
    if row.kind == StatusKind.TOKEN:
        entries = StatusList(row.bits, bytes(row.data))
        if cwt:
            body = issue_status_list_cwt(
                uri=uri,
                status_list=entries,
                iat=now,
                exp=now + 86_400,
                ttl=_TTL,
                signer=signer,
                kid=signer.kid,
            )
            rendered = RenderedList(body, CWT_MEDIA_TYPE, row.version, now)
        else:
            token = sign_compact(
                {"typ": "statuslist+jwt", "kid": signer.kid},
                {
                    "sub": uri,
                    "iat": now,
                    "exp": now + 86_400,
                    "ttl": _TTL,
                    "status_list": entries.to_json(),
                },
                signer,
            )
            rendered = RenderedList(token, "application/statuslist+jwt", row.version, now)
    else:
        # W3C Bitstring Status List §2.2, secured as VC-JOSE-COSE §3.1.1: the payload is
        # the credential; its validity period replaces the JWT's exp, its ttl is in ms.
        moment = rt.clock.now()
        credential = status_list_credential(
            list_uri=uri,
            issuer=rt.settings.public_url,
            purpose="revocation",
            status_list=BitstringStatusList(bytes(row.data)),
            valid_from=moment,
            valid_until=moment + timedelta(days=1),
            ttl_ms=_TTL * 1000,
        )
        token = secure_credential(credential, signer, kid=signer.kid, iat=now)
        rendered = RenderedList(token, "application/vc+jwt", row.version, now)
    cache.put(key, rendered)
    return rendered


def render_cache(rt: Runtime) -> BoundedCache[str, RenderedList]:
    """The runtime's cache of rendered status lists, by list id (made on first use)."""
    return _RENDERED(rt)


_RENDERED = Attached[Runtime, BoundedCache[str, RenderedList]](
    lambda _rt: BoundedCache(
        max_entries=_CACHE_ENTRIES,
        max_bytes=_CACHE_BYTES,
        size=lambda key, value: text_size(key, value.token),
    )
)
