"""Federated trust: other platforms' trust bundles, pinned by key.

An administrator pins a bundle by its URL (``https://other.example/.well-known/trust-bundle``)
and the key that signs it (a public JWK or a ``did:key``, obtained out of band:
``commons verify trust key`` on the other platform).  The bundle is fetched through the
SSRF-guarded :class:`~credit_commons.core.net.OutboundFetcher` and accepted only if
:func:`~credit_commons.verifier.trust_bundle.verify_bundle` passes under the pinned key:
``typ``, signature, not expired, a version not lower than the last one accepted from
that URL (kept in the pin's row, so a rollback is refused across restarts), and — on every
refresh — the issuer (``iss``) the bundle named when it was pinned.  The accepted
bundle is kept (the cache) until :func:`refresh_pins` fetches a newer one; a bundle that
fails is refused and the last accepted one stays, until it expires.  A refresh fetches
outside any transaction and keeps a bundle only if no newer one was kept meanwhile.

Every change records an event: ``trust.pinned``, ``trust.unpinned``, ``trust.pin_refreshed``
(a newer version accepted) and ``trust.pin_refused`` (with the reason).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from credit_commons.core.attached import Attached
from credit_commons.core.clock import utc
from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError, ConflictError, NotFoundError, ValidationError
from credit_commons.core.ids import new_id
from credit_commons.core.net import OutboundFetcher
from credit_commons.events import EventDetails, record_event
from credit_commons.formats.jws import JwsInvalid, parse_compact
from credit_commons.identity import Principal, actor_of
from credit_commons.keys import (
    ACCEPTED_ALGS,
    PublicKey,
    decode_did_key,
    public_key_from_jwk,
    public_key_to_jwk,
)
from credit_commons.runtime import Runtime
from credit_commons.verifier.models import TrustPinRow
from credit_commons.verifier.schemas import TrustPinRefresh, TrustPinView
from credit_commons.verifier.trust_bundle import (
    TRUST_BUNDLE_MEDIA_TYPE,
    TrustBundle,
    TrustBundleExpired,
    TrustBundleInvalid,
    TrustBundleRollback,
    TrustBundleSignatureInvalid,
    bundle_from_payload,
    verify_bundle,
)

__all__ = [
    "TRUST_FETCHER",
    "FetchedPin",
    "PinRefusal",
    "PinTarget",
    "TrustPinRefreshed",
    "TrustPinRefused",
    "TrustPinned",
    "TrustUnpinned",
    "fetch_pin",
    "list_pins",
    "pin_bundle",
    "pin_key",
    "pin_targets",
    "pinned_bundles",
    "record_refreshes",
    "refresh_pins",
    "unpin_bundle",
]

#: Why a fetched bundle was refused.
PinRefusal = Literal["signature_invalid", "expired", "rollback", "invalid", "fetch_failed"]
_MAX_BUNDLE_BYTES: Final = 4 * 1024 * 1024


class TrustPinned(EventDetails, event_type="trust.pinned"):
    """Another platform's bundle was pinned (its URL behind the object hash)."""

    version: int


class TrustUnpinned(EventDetails, event_type="trust.unpinned"):
    """A pinned bundle was removed."""

    version: int


class TrustPinRefreshed(EventDetails, event_type="trust.pin_refreshed"):
    """A newer version of a pinned bundle was accepted."""

    version: int
    previous: int


class TrustPinRefused(EventDetails, event_type="trust.pin_refused"):
    """A fetched bundle was refused; the last accepted one stays."""

    reason: PinRefusal


TRUST_FETCHER = Attached[Runtime, OutboundFetcher](
    lambda rt: OutboundFetcher(
        allow_private=rt.settings.insecure_allow_private_network,
        allow_http=rt.settings.insecure_allow_http,
        max_bytes=_MAX_BUNDLE_BYTES,
    )
)
"""Each runtime's fetcher of pinned bundles (tests install their own with ``.set``)."""


def pin_key(text: str) -> PublicKey:
    """The key a pin names: a ``did:key``, or a public JWK as JSON.  Raises
    :class:`ValidationError` (a private JWK included)."""
    try:
        if text.startswith("did:key:"):
            return decode_did_key(text)
        jwk = json.loads(text)
        if not isinstance(jwk, dict):
            raise ValidationError("a pinned key is a did:key or a public JWK")
        return public_key_from_jwk({k: v for k, v in jwk.items() if k != "kid"})
    except (ValueError, CommonsError) as e:
        raise ValidationError("a pinned key is a did:key or a public JWK") from e


def _admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise NotFoundError("no such resource")


def _check_url(url: str) -> None:
    if not isinstance(url, str) or not 8 <= len(url) <= 512 or not url.isascii():
        raise ValidationError("a bundle URL is 8 to 512 ASCII characters")
    if not url.startswith(("https://", "http://")):
        raise ValidationError("a bundle URL is an https URL")


def _fetch(rt: Runtime, url: str) -> str:
    accept = f"{TRUST_BUNDLE_MEDIA_TYPE}, application/jwt;q=0.5"
    body, _ = TRUST_FETCHER(rt).get_bytes(url, accept=accept)
    try:
        return body.decode("ascii").strip()
    except UnicodeDecodeError as e:
        raise TrustBundleInvalid("the bundle is not a compact JWS") from e


def _view(row: TrustPinRow) -> TrustPinView:
    bundle = _stored(row)
    return TrustPinView(
        id=row.id,
        url=row.url,
        key=json.loads(row.key_jwk),
        version=row.version,
        iss=bundle.iss if bundle else None,
        issuers=len(bundle.entries) if bundle else 0,
        expires_at=bundle.expires_at.isoformat() if bundle else None,
        fetched_at=utc(row.fetched_at).isoformat() if row.fetched_at else None,
        pinned_at=utc(row.pinned_at).isoformat(),
    )


def pin_bundle(rt: Runtime, principal: Principal, url: str, key: str) -> TrustPinView:
    """Pin the bundle at ``url`` under ``key`` (administrators): fetched and verified now,
    refused if it does not verify.  The issuer the bundle names now is the one every
    refresh must name (:func:`fetch_pin`).

    Its own units of work, as :func:`refresh_pins`: the fetch is made outside any
    transaction, the pin written in a short one after it.  The caller must hold no write
    transaction.

    Raises :class:`ValidationError`, :class:`ConflictError` (already pinned), the
    fetcher's ``UnsafeUrl``/``FetchFailed`` and :class:`TrustBundleInvalid` (or a subclass).
    """
    _admin(principal)
    _check_url(url)
    public = pin_key(key)
    with transaction(rt.read_sessions) as session:
        if session.scalar(select(TrustPinRow.id).where(TrustPinRow.url == url)):
            raise ConflictError("this bundle is already pinned")
    token = _fetch(rt, url)
    now = rt.clock.now()
    bundle = verify_bundle(token, public, now=now)
    with transaction(rt.sessions) as session:
        row = TrustPinRow(
            id=new_id("pin"),
            url=url,
            key_jwk=json.dumps(public_key_to_jwk(public), sort_keys=True),
            version=bundle.version,
            token=token,
            fetched_at=now,
            pinned_at=now,
        )
        try:  # pinned meanwhile: the url is unique
            with session.begin_nested():
                session.add(row)
        except DbIntegrityError as e:
            raise ConflictError("this bundle is already pinned") from e
        record_event(
            session,
            TrustPinned(version=bundle.version),
            actor=actor_of(rt, principal),
            at=now,
            object=rt.objects.digest("trust_pin", url),
        )
        return _view(row)


def list_pins(session: Session, rt: Runtime, principal: Principal) -> list[TrustPinView]:
    """Every pinned bundle, oldest first (administrators)."""
    del rt
    _admin(principal)
    return [_view(r) for r in session.scalars(select(TrustPinRow).order_by(TrustPinRow.id))]


def unpin_bundle(
    session: Session, rt: Runtime, principal: Principal, url_or_id: str
) -> TrustPinView:
    """Stop trusting a pinned bundle, named by its URL or pin id (administrators).  Raises
    :class:`NotFoundError`."""
    _admin(principal)
    row = session.scalar(
        select(TrustPinRow).where((TrustPinRow.url == url_or_id) | (TrustPinRow.id == url_or_id))
    )
    if row is None:
        raise NotFoundError("no such pinned bundle")
    view = _view(row)
    session.execute(delete(TrustPinRow).where(TrustPinRow.id == row.id))
    record_event(
        session,
        TrustUnpinned(version=row.version),
        actor=actor_of(rt, principal),
        at=rt.clock.now(),
        object=rt.objects.digest("trust_pin", row.url),
    )
    return view


def _refusal(error: CommonsError) -> PinRefusal:
    if isinstance(error, TrustBundleSignatureInvalid):
        return "signature_invalid"
    if isinstance(error, TrustBundleExpired):
        return "expired"
    if isinstance(error, TrustBundleRollback):
        return "rollback"
    if isinstance(error, TrustBundleInvalid):
        return "invalid"
    return "fetch_failed"


@dataclass(frozen=True, slots=True)
class PinTarget:
    """What a refresh needs of a pin, read before anything is fetched: where its bundle is,
    the pinned key, the version accepted last and the issuer the bundle named then."""

    id: str
    url: str
    key_jwk: str
    version: int
    iss: str | None


@dataclass(frozen=True, slots=True)
class FetchedPin:
    """A pin's bundle fetched again: the verified token and its version, or the refusal."""

    target: PinTarget
    token: str | None
    version: int
    refusal: PinRefusal | None


def pin_targets(session: Session, rt: Runtime, principal: Principal) -> list[PinTarget]:
    """Every pin as a refresh needs it, oldest first (administrators)."""
    del rt
    _admin(principal)
    targets = []
    for row in session.scalars(select(TrustPinRow).order_by(TrustPinRow.id)):
        kept = _stored(row)
        targets.append(
            PinTarget(row.id, row.url, row.key_jwk, row.version, kept.iss if kept else None)
        )
    return targets


def fetch_pin(rt: Runtime, target: PinTarget) -> FetchedPin:
    """Fetch a pin's bundle and verify it (no database: a refresh makes its fetches outside
    any transaction) — under the pinned key, not below the accepted version, and naming the
    issuer the pinned bundle named: the key pins a platform, not whatever it signs."""
    try:
        token = _fetch(rt, target.url)
        bundle = verify_bundle(
            token,
            pin_key(target.key_jwk),
            now=rt.clock.now(),
            last_version=target.version,
            iss=target.iss,
        )
    except CommonsError as e:
        return FetchedPin(target, None, target.version, _refusal(e))
    return FetchedPin(target, token, bundle.version, None)


def record_refreshes(
    session: Session, rt: Runtime, principal: Principal, fetched: Sequence[FetchedPin]
) -> list[TrustPinRefresh]:
    """Keep what :func:`fetch_pin` accepted and record each outcome (administrators).

    The version only rises, also against a refresh that ran at the same time: a bundle is
    kept only where the stored version is not above its own (a compare-and-set), otherwise
    it is refused as a rollback and the newer one stays.  A pin removed meanwhile is skipped.
    """
    _admin(principal)
    actor = actor_of(rt, principal)
    now = rt.clock.now()
    outcomes = []
    for item in fetched:
        target = rt.objects.digest("trust_pin", item.target.url)
        refusal = item.refusal
        if refusal is None:
            kept = session.execute(
                update(TrustPinRow)
                .where(TrustPinRow.id == item.target.id, TrustPinRow.version <= item.version)
                .values(version=item.version, token=item.token, fetched_at=now)
                .execution_options(synchronize_session="fetch")
            )
            if kept.rowcount != 1:  # type: ignore[attr-defined]
                stored = session.scalar(
                    select(TrustPinRow.version).where(TrustPinRow.id == item.target.id)
                )
                if stored is None:
                    continue  # unpinned meanwhile
                refusal = "rollback"
        if refusal is not None:
            record_event(
                session, TrustPinRefused(reason=refusal), actor=actor, at=now, object=target
            )
            outcomes.append(
                TrustPinRefresh(
                    id=item.target.id,
                    url=item.target.url,
                    accepted=False,
                    version=item.target.version,
                    reason=refusal,
                )
            )
            continue
        if item.version != item.target.version:
            record_event(
                session,
                TrustPinRefreshed(version=item.version, previous=item.target.version),
                actor=actor,
                at=now,
                object=target,
            )
        outcomes.append(
            TrustPinRefresh(
                id=item.target.id,
                url=item.target.url,
                accepted=True,
                version=item.version,
                reason=None,
            )
        )
    session.flush()
    return outcomes


def refresh_pins(rt: Runtime, principal: Principal) -> list[TrustPinRefresh]:
    """Fetch every pinned bundle again (administrators; ``commons verify trust refresh``,
    the worker hourly): a verified bundle of the same or a newer version replaces the kept
    one; one that fails is refused (``trust.pin_refused``) and the kept one stays.

    Its own units of work, because fetching takes network time that no transaction may
    span (on SQLite a write transaction holds the database's one write lock): the pins are
    read in a read-only one, fetched outside any, and the outcomes written in a short one.
    The caller must hold no write transaction.
    """
    with transaction(rt.read_sessions) as session:
        targets = pin_targets(session, rt, principal)
    fetched = [fetch_pin(rt, target) for target in targets]
    with transaction(rt.sessions) as session:
        return record_refreshes(session, rt, principal, fetched)


class _Parsed:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bundles: dict[tuple[str, int, str], TrustBundle] = {}


_PARSED = Attached[Runtime, _Parsed](lambda rt: _Parsed())


def _stored(row: TrustPinRow) -> TrustBundle | None:
    """The kept bundle of a pin (verified when it was fetched; the database is trusted as
    the trust list itself is)."""
    if not row.token:
        return None
    try:
        jws = parse_compact(row.token, algs=ACCEPTED_ALGS, max_chars=_MAX_BUNDLE_BYTES * 2)
        return bundle_from_payload(jws.payload)
    except (JwsInvalid, TrustBundleInvalid):
        return None


def pinned_bundles(session: Session, rt: Runtime) -> list[TrustBundle]:
    """The kept bundle of every pin (an expired one included: its lookups answer
    ``bundle_expired``)."""
    state = _PARSED(rt)
    bundles: list[TrustBundle] = []
    rows = session.execute(
        select(TrustPinRow.id, TrustPinRow.version, TrustPinRow.fetched_at)
    ).all()
    for pin_id, version, fetched_at in rows:
        # A refresh changes the fetch time (and the token), so the key names one token.
        key = (pin_id, version, fetched_at.isoformat() if fetched_at else "")
        bundle = state.bundles.get(key)
        if bundle is None:
            row = session.get(TrustPinRow, pin_id)
            bundle = _stored(row) if row is not None else None
            if bundle is None:
                continue
            with state.lock:
                if len(state.bundles) > 256:
                    state.bundles.clear()
                state.bundles[key] = bundle
        bundles.append(bundle)
    return bundles
