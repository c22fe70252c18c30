"""The verifier's trust list: issuers whose credentials this platform accepts besides its own.

An entry is an issuer identifier exactly as credentials carry it in ``iss``:

* an ``https`` issuer URL — its keys come from its JWT VC Issuer Metadata
  (``/.well-known/jwt-vc-issuer``, SD-JWT VC draft §5), see :mod:`~credit_commons.verifier.foreign`;
* a ``did:web`` — its keys come from its DID document;
* a ``did:key`` — the key is the identifier itself;
* an X.509 trust anchor (kind ``x509``, identifier ``x509:sha256:…`` of its DER) — any
  issuer whose ``x5c`` chain verifies up to it.

Each entry carries trust marks and the credential types it may issue (``*``: any).  The list
is the one source of the platform's signed trust bundle
(:mod:`~credit_commons.verifier.trust_registry`): every change writes the bundle's next
version in the same transaction.  Administrators manage the list
(``/v1/admin/trusted-issuers``, ``/v1/admin/trust-bundle/entries``, ``commons issuer trust``,
``commons verify trust``); every change records ``issuer.trusted`` / ``issuer.untrusted``
with the identifier behind the event's object hash, and ``trust.bundle_versioned``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from typing import Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.encoding import JsonObject, b64_encode, canonical_json
from credit_commons.core.errors import CommonsError, ConflictError, NotFoundError, ValidationError
from credit_commons.core.ids import new_id
from credit_commons.events import EventDetails, record_event
from credit_commons.identity import Principal, actor_of
from credit_commons.keys import check_did_web, decode_did_key, did_web_unresolvable
from credit_commons.runtime import Runtime
from credit_commons.verifier.models import TrustBundleVersionRow, TrustedIssuerRow
from credit_commons.verifier.schemas import TrustedIssuerView

__all__ = [
    "ANY_TYPE",
    "EntryKind",
    "IssuerKind",
    "IssuerTrusted",
    "IssuerUntrusted",
    "TrustBundleVersioned",
    "add_trusted_anchor",
    "add_trusted_issuer",
    "entry_documents",
    "issuer_kind",
    "list_trusted_issuers",
    "read_anchor",
    "remove_trusted_issuer",
    "trusted_kind",
    "unusable",
    "write_bundle_version",
    "x509_entry_id",
]

#: What kind of identifier a trusted issuer has, which decides where its keys come from.
IssuerKind = Literal["https", "did:web", "did:key"]
#: The kinds of trust-list entries: an issuer identifier, or an X.509 trust anchor.
EntryKind = Literal["https", "did:web", "did:key", "x509"]
#: The ``types`` member that lets an entry issue any credential type.
ANY_TYPE = "*"
_MARK = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class IssuerTrusted(EventDetails, event_type="issuer.trusted"):
    """An issuer (or X.509 anchor) was added to the trust list (the identifier is behind the
    object hash)."""

    kind: EntryKind


class IssuerUntrusted(EventDetails, event_type="issuer.untrusted"):
    """An issuer was removed from the trust list."""

    kind: EntryKind


class TrustBundleVersioned(EventDetails, event_type="trust.bundle_versioned"):
    """The trust list changed, making the trust bundle's ``version`` (with ``entries``)."""

    version: int
    entries: int


def x509_entry_id(anchor_der: bytes) -> str:
    """The entry id of an X.509 trust anchor: ``x509:sha256:`` and its DER's SHA-256."""
    return f"x509:sha256:{hashlib.sha256(anchor_der).hexdigest()}"


def read_anchor(data: bytes) -> bytes:
    """The DER of a CA certificate given as PEM or DER; raises :class:`ValidationError` for
    anything else (not a certificate, not a CA)."""
    try:
        certificate = (
            x509.load_pem_x509_certificate(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_certificate(data)
        )
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except (ValueError, x509.ExtensionNotFound) as e:
        raise ValidationError("a trust anchor is a CA certificate (PEM or DER)") from e
    if not constraints.value.ca:
        raise ValidationError("a trust anchor is a CA certificate (PEM or DER)")
    return certificate.public_bytes(Encoding.DER)


def _terms(marks: Collection[str], types: Collection[str]) -> tuple[list[str], list[str]]:
    marks_ = sorted(set(marks))
    types_ = sorted(set(types)) or [ANY_TYPE]
    if len(marks_) > 64 or not all(isinstance(m, str) and _MARK.fullmatch(m) for m in marks_):
        raise ValidationError("trust marks are at most 64 of [a-z0-9-], 1 to 64 characters")
    if len(types_) > 64 or not all(isinstance(t, str) and 1 <= len(t) <= 255 for t in types_):
        raise ValidationError("an entry lists at most 64 credential types of 1 to 255 characters")
    return marks_, types_


def issuer_kind(issuer: str) -> IssuerKind:
    """What kind of issuer identifier ``issuer`` is; raises :class:`ValidationError` for
    anything but an https URL without query, fragment or credentials, a valid ``did:web``
    or a valid ``did:key``."""
    if not isinstance(issuer, str) or not 8 <= len(issuer) <= 512 or not issuer.isascii():
        raise ValidationError("an issuer identifier is 8 to 512 ASCII characters")
    try:
        if issuer.startswith("did:web:"):
            # Well-formed is enough to read one back: an entry naming no domain (stored
            # before that was refused) never resolves, so it only never verifies anything.
            check_did_web(issuer)
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


def unusable(issuer: str) -> str | None:
    """Why the trusted issuer identifier ``issuer`` (of a valid kind) can never verify a
    credential — a ``did:web`` naming an IP address, which is never resolved — or None.
    Adding one is refused; one stored or received before is kept and shown with this."""
    if issuer.startswith("did:web:"):
        return did_web_unresolvable(issuer)
    return None


def _admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise NotFoundError("no such resource")


def _view(row: TrustedIssuerRow) -> TrustedIssuerView:
    return TrustedIssuerView(
        id=row.id,
        issuer=row.issuer,
        kind=row.kind,
        added_at=utc(row.added_at).isoformat(),
        marks=json.loads(row.marks),
        types=json.loads(row.types),
        unusable=unusable(row.issuer),
    )


def add_trusted_issuer(
    session: Session,
    rt: Runtime,
    principal: Principal,
    issuer: str,
    *,
    marks: Collection[str] = (),
    types: Collection[str] = (),
) -> TrustedIssuerView:
    """Trust ``issuer`` with trust ``marks``, to issue ``types`` (none given: any type);
    administrators only, others get :class:`NotFoundError`.  Writes the trust bundle's next
    version.

    Raises :class:`ValidationError` for a malformed identifier, mark or type and
    :class:`ConflictError` when it is already trusted.
    """
    _admin(principal)
    kind = issuer_kind(issuer)
    refusal = unusable(issuer)
    if refusal is not None:
        raise ValidationError(f"{issuer} can never be verified: {refusal}")
    return _add(session, rt, principal, issuer, kind=kind, marks=marks, types=types, anchor=None)


def add_trusted_anchor(
    session: Session,
    rt: Runtime,
    principal: Principal,
    anchor: bytes,
    *,
    marks: Collection[str] = (),
    types: Collection[str] = (),
) -> TrustedIssuerView:
    """Trust the X.509 CA certificate ``anchor`` (PEM or DER): any issuer whose ``x5c``
    chain verifies up to it and names the issuer (administrators only).

    Raises :class:`ValidationError` (not a CA certificate, a malformed mark or type) and
    :class:`ConflictError` when it is already trusted.
    """
    _admin(principal)
    der = read_anchor(anchor)
    entry_id = x509_entry_id(der)
    return _add(session, rt, principal, entry_id, kind="x509", marks=marks, types=types, anchor=der)


def _add(
    session: Session,
    rt: Runtime,
    principal: Principal,
    issuer: str,
    *,
    kind: EntryKind,
    marks: Collection[str],
    types: Collection[str],
    anchor: bytes | None,
) -> TrustedIssuerView:
    marks_, types_ = _terms(marks, types)
    if session.scalar(select(TrustedIssuerRow.id).where(TrustedIssuerRow.issuer == issuer)):
        raise ConflictError("the issuer is already trusted")
    now = rt.clock.now()
    row = TrustedIssuerRow(
        id=new_id("tis"),
        issuer=issuer,
        kind=kind,
        added_at=now,
        marks=json.dumps(marks_),
        types=json.dumps(types_),
        anchor=anchor,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except DbIntegrityError as e:
        raise ConflictError("the issuer is already trusted") from e
    actor = actor_of(rt, principal)
    record_event(
        session,
        IssuerTrusted(kind=kind),
        actor=actor,
        at=now,
        object=rt.objects.digest("trusted_issuer", issuer),
    )
    write_bundle_version(session, rt, actor)
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
    actor = actor_of(rt, principal)
    record_event(
        session,
        IssuerUntrusted(kind=row.kind),  # type: ignore[arg-type]
        actor=actor,
        at=rt.clock.now(),
        object=rt.objects.digest("trusted_issuer", row.issuer),
    )
    write_bundle_version(session, rt, actor)
    return removed


def trusted_kind(session: Session, issuer: str) -> IssuerKind | None:
    """The kind of ``issuer`` when it is on the trust list, else ``None``."""
    kind = session.scalar(select(TrustedIssuerRow.kind).where(TrustedIssuerRow.issuer == issuer))
    return kind if kind in ("https", "did:web", "did:key") else None  # type: ignore[return-value]


def entry_documents(session: Session) -> list[JsonObject]:
    """The trust list as the bundle's ``issuers`` member: one object per entry (``id``,
    ``kind``, ``marks``, ``types`` and, for an anchor, ``x5c_anchor``), by id."""
    documents: list[JsonObject] = []
    for row in session.scalars(select(TrustedIssuerRow).order_by(TrustedIssuerRow.issuer)):
        doc: JsonObject = {
            "id": row.issuer,
            "kind": row.kind,
            "marks": json.loads(row.marks),
            "types": json.loads(row.types),
        }
        if row.anchor is not None:
            doc["x5c_anchor"] = b64_encode(row.anchor)
        documents.append(doc)
    return documents


def write_bundle_version(session: Session, rt: Runtime, actor: str) -> int:
    """Record the trust list as it now stands as the trust bundle's next version, in the
    caller's transaction, with ``trust.bundle_versioned``; returns the version.

    Raises :class:`ConflictError` when a concurrent change took the same version (the
    caller's transaction is then rolled back; the change can be retried).
    """
    issuers = entry_documents(session)
    version = (session.scalar(select(func.max(TrustBundleVersionRow.version))) or 0) + 1
    now = rt.clock.now()
    try:
        with session.begin_nested():
            session.add(
                TrustBundleVersionRow(
                    version=version,
                    issuers=canonical_json(issuers).decode(),
                    created_at=now,
                )
            )
    except DbIntegrityError as e:
        raise ConflictError("the trust list changed concurrently; try again") from e
    record_event(
        session,
        TrustBundleVersioned(version=version, entries=len(issuers)),
        actor=actor,
        at=now,
        object=rt.objects.digest("trust_bundle", str(version)),
    )
    return version
