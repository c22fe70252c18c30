"""The platform's trust registry: its signed trust bundle, and the lookup the pipeline asks.

The bundle is made from the trust list (:mod:`~credit_commons.verifier.trust`), which
writes each version's entries as it changes.  :func:`published_bundle` signs the newest
version with the platform's ``trust-bundle`` key (Ed25519, made on first use) for
``GET /.well-known/trust-bundle``: ``iat`` now and ``exp`` a day later, re-signed once half
of that has passed (the same version, so a verifier that pinned it sees no rollback).
Besides the trust list's entries a bundle names the platform itself (an https issuer of any
type, when its public URL is https), so a verifier pinning it accepts this platform's own
credentials.
:func:`trusted` answers step 6 of the pipeline over the platform's own list and every
pinned bundle of another platform (:mod:`~credit_commons.verifier.trust_pins`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from credit_commons.core.attached import Attached
from credit_commons.core.errors import ConflictError, NotFoundError, ValidationError
from credit_commons.identity import Principal
from credit_commons.keys import KeyType, PublicKey, StoredSigner
from credit_commons.keys import service as key_service
from credit_commons.runtime import Runtime
from credit_commons.verifier.models import TrustBundleVersionRow
from credit_commons.verifier.schemas import TrustBundleView
from credit_commons.verifier.trust import entry_documents, unusable, write_bundle_version
from credit_commons.verifier.trust_bundle import (
    TrustBundle,
    Trusted,
    TrustEntry,
    entries_from_json,
    lookup_in,
    sign_bundle,
)
from credit_commons.verifier.trust_pins import pinned_bundles

__all__ = [
    "BUNDLE_VALIDITY",
    "TRUST_BUNDLE_KEY",
    "BundleKey",
    "SignedBundle",
    "bundle_key",
    "bundle_signer",
    "bundle_view",
    "lookup",
    "own_bundle",
    "published_bundle",
    "trusted",
]

TRUST_BUNDLE_KEY: Final = "trust-bundle"
#: How long a published bundle is valid; it is re-signed after half of it.
BUNDLE_VALIDITY: Final = timedelta(days=1)
_PLATFORM_KEY: Final = key_service.PlatformKey(TRUST_BUNDLE_KEY, KeyType.ED25519, "verifier")


@dataclass(frozen=True, slots=True)
class SignedBundle:
    """A signed trust bundle (compact JWS) and its version and validity."""

    token: str
    version: int
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class BundleKey:
    """The key another platform pins for this one's bundle: its public JWK and did:key."""

    jwk: dict[str, str]
    did: str
    public_key: PublicKey


def bundle_signer(session: Session, rt: Runtime) -> StoredSigner:
    """The signer of the trust bundle (made on first use).  Raises what the key store
    raises."""
    return key_service.platform_signer(session, rt, _PLATFORM_KEY)


def bundle_key(session: Session, rt: Runtime) -> BundleKey:
    """The public key that signs this platform's bundle, to give to verifiers that pin it."""
    signer = bundle_signer(session, rt)
    public = signer.public_key
    keys = key_service.public_jwks(session, rt.key_store, TRUST_BUNDLE_KEY)
    newest = {k: str(v) for k, v in keys.keys[0].items()}
    return BundleKey(jwk=newest, did=keys.did, public_key=public)


class _Published:
    """The signed bundle last published by a runtime, and the parsed entries of each
    version its lookups used (a version's entries never change)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.signed: SignedBundle | None = None
        self.entries: dict[int, tuple[TrustEntry, ...]] = {}


_PUBLISHED = Attached[Runtime, _Published](lambda rt: _Published())


def _newest(session: Session) -> int:
    return session.scalar(select(func.max(TrustBundleVersionRow.version))) or 0


def published_bundle(session: Session, rt: Runtime) -> SignedBundle:
    """This platform's trust bundle, signed: the newest version (version 1 is written from
    the trust list when none exists yet), re-signed when half its validity has passed.

    Raises what the key store raises.
    """
    now = rt.clock.now()
    version = _newest(session)
    state = _PUBLISHED(rt)
    signed = state.signed
    if (
        signed is not None
        and signed.version == version
        and now < signed.issued_at + BUNDLE_VALIDITY / 2
        and now >= signed.issued_at
    ):
        return signed
    if version == 0:
        try:
            version = write_bundle_version(session, rt, rt.operator_actor("verifier"))
        except ConflictError:  # another request published version 1 at the same moment
            version = _newest(session)
    bundle = _bundle(session, rt, version, now)
    signer = bundle_signer(session, rt)
    fresh = SignedBundle(
        token=sign_bundle(bundle, signer, signer.kid),
        version=version,
        issued_at=datetime.fromtimestamp(bundle.iat, now.tzinfo),
        expires_at=bundle.expires_at,
    )
    with state.lock:
        state.signed = fresh
    return fresh


def _bundle(session: Session, rt: Runtime, version: int, now: datetime) -> TrustBundle:
    state = _PUBLISHED(rt)
    entries = state.entries.get(version)
    if entries is None:
        row = session.get(TrustBundleVersionRow, version) if version else None
        issuers = json.loads(row.issuers) if row is not None else entry_documents(session)
        entries = entries_from_json(issuers)
        with state.lock:
            if len(state.entries) > 16:
                state.entries.clear()
            state.entries[version] = entries
    iat = int(now.timestamp())
    return TrustBundle(
        rt.settings.public_url,
        max(version, 1),
        iat,
        iat + int(BUNDLE_VALIDITY.total_seconds()),
        (*entries, *_platform_entry(rt, entries)),
    )


def _platform_entry(rt: Runtime, listed: Sequence[TrustEntry]) -> tuple[TrustEntry, ...]:
    """The platform itself as an https issuer of any type (its keys in its JWT VC Issuer
    Metadata), so that a verifier pinning this bundle — a lender running its own verifier
    against it — accepts this platform's credentials through it.  Only when its public URL
    is an https issuer identifier (a development platform on http is no issuer elsewhere),
    and not twice when an administrator listed it.  The same in every version: the
    platform's own catalogue, not the trust list, decides what it issues."""
    issuer = rt.settings.public_url
    if any(e.id == issuer for e in listed):
        return ()
    try:
        return (TrustEntry(issuer, "https"),)
    except ValidationError:
        return ()


def bundle_view(session: Session, rt: Runtime, principal: Principal) -> TrustBundleView:
    """The newest bundle's version and entries, and the key verifiers pin (administrators;
    others get :class:`NotFoundError`)."""
    if not principal.is_admin:
        raise NotFoundError("no such resource")
    signed = published_bundle(session, rt)
    key = bundle_key(session, rt)
    bundle = _bundle(session, rt, signed.version, rt.clock.now())
    return TrustBundleView(
        version=signed.version,
        iss=bundle.iss,
        issuers=[e.to_json() for e in bundle.entries],
        unusable={e.id: why for e in bundle.entries if (why := unusable(e.id)) is not None},
        key=dict(key.jwk),
        did=key.did,
    )


def own_bundle(session: Session, rt: Runtime) -> TrustBundle:
    """The platform's own trust list as a bundle valid from now (unsigned: it is read from
    the platform's own database)."""
    return _bundle(session, rt, _newest(session), rt.clock.now())


def trusted(
    session: Session,
    rt: Runtime,
    issuer_id: str,
    credential_type: str | Collection[str],
    *,
    required_marks: Collection[str] = (),
    x5c: Sequence[str] | None = None,
) -> TrustEntry:
    """Step 6 of the pipeline: the entry under which ``issuer_id`` may issue
    ``credential_type`` with ``required_marks`` — in the platform's own list, then in each
    pinned bundle of another platform (see :func:`~credit_commons.verifier.trust_bundle.lookup_in`).

    Raises :class:`~credit_commons.verifier.trust_bundle.IssuerNotTrusted` with its reason.
    """
    return lookup(
        session, rt, issuer_id, credential_type, required_marks=required_marks, x5c=x5c
    ).entry


def lookup(
    session: Session,
    rt: Runtime,
    issuer_id: str,
    credential_type: str | Collection[str],
    *,
    required_marks: Collection[str] = (),
    x5c: Sequence[str] | None = None,
) -> Trusted:
    """:func:`trusted`, with — for an issuer trusted through an ``x5c`` chain up to an
    X.509 anchor — the end-entity certificate's key, the one key that may verify the
    credential (step 3).

    Raises :class:`~credit_commons.verifier.trust_bundle.IssuerNotTrusted` with its reason.
    """
    bundles = [own_bundle(session, rt), *pinned_bundles(session, rt)]
    return lookup_in(bundles, issuer_id, credential_type, required_marks, x5c, now=rt.clock.now())
