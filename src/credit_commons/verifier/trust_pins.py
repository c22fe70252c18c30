"""Federated trust: other platforms' trust bundles, pinned by key.

An administrator pins a bundle by its URL (``https://other.example/.well-known/trust-bundle``)
and the key that signs it (a public JWK or a ``did:key``, obtained out of band:
``commons verify trust key`` on the other platform).  The bundle is fetched through the
SSRF-guarded :class:`~credit_commons.core.net.OutboundFetcher` and accepted only if
:func:`~credit_commons.verifier.trust_bundle.verify_bundle` passes under the pinned key:
``typ``, signature, not expired, and a version not lower than the last one accepted from
that URL (kept in the pin's row, so a rollback is refused across restarts).  The accepted
bundle is kept (the cache) until :func:`refresh_pins` fetches a newer one; a bundle that
fails is refused and the last accepted one stays, until it expires.

Every change records an event: ``trust.pinned``, ``trust.unpinned``, ``trust.pin_refreshed``
(a newer version accepted) and ``trust.pin_refused`` (with the reason).
"""

from __future__ import annotations

import json
import threading
from typing import Final, Literal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from credit_commons.core.attached import Attached
from credit_commons.core.clock import utc
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
    "PinRefusal",
    "TrustPinRefreshed",
    "TrustPinRefused",
    "TrustPinned",
    "TrustUnpinned",
    "list_pins",
    "pin_bundle",
    "pin_key",
    "pinned_bundles",
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


def pin_bundle(
    session: Session, rt: Runtime, principal: Principal, url: str, key: str
) -> TrustPinView:
    """Pin the bundle at ``url`` under ``key`` (administrators): fetched and verified now,
    refused if it does not verify.

    Raises :class:`ValidationError`, :class:`ConflictError` (already pinned), the
    fetcher's ``UnsafeUrl``/``FetchFailed`` and :class:`TrustBundleInvalid` (or a subclass).
    """
    _admin(principal)
    _check_url(url)
    public = pin_key(key)
    if session.scalar(select(TrustPinRow.id).where(TrustPinRow.url == url)):
        raise ConflictError("this bundle is already pinned")
    now = rt.clock.now()
    token = _fetch(rt, url)
    bundle = verify_bundle(token, public, now=now)
    row = TrustPinRow(
        id=new_id("pin"),
        url=url,
        key_jwk=json.dumps(public_key_to_jwk(public), sort_keys=True),
        version=bundle.version,
        token=token,
        fetched_at=now,
        pinned_at=now,
    )
    try:
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


def refresh_pins(session: Session, rt: Runtime, principal: Principal) -> list[TrustPinRefresh]:
    """Fetch every pinned bundle again (administrators; a scheduled ``commons verify trust
    refresh``): a verified bundle of the same or a newer version replaces the kept one;
    one that fails is refused (``trust.pin_refused``) and the kept one stays."""
    _admin(principal)
    actor = actor_of(rt, principal)
    rows = list(session.scalars(select(TrustPinRow).order_by(TrustPinRow.id)))
    outcomes = [_refresh(session, rt, row, actor) for row in rows]
    session.flush()
    return outcomes


def _refresh(session: Session, rt: Runtime, row: TrustPinRow, actor: str) -> TrustPinRefresh:
    now = rt.clock.now()
    target = rt.objects.digest("trust_pin", row.url)
    try:
        token = _fetch(rt, row.url)
        bundle = verify_bundle(token, pin_key(row.key_jwk), now=now, last_version=row.version)
    except CommonsError as e:
        reason = _refusal(e)
        record_event(session, TrustPinRefused(reason=reason), actor=actor, at=now, object=target)
        return TrustPinRefresh(
            id=row.id, url=row.url, accepted=False, version=row.version, reason=reason
        )
    previous = row.version
    row.version, row.token, row.fetched_at = bundle.version, token, now
    if bundle.version != previous:
        record_event(
            session,
            TrustPinRefreshed(version=bundle.version, previous=previous),
            actor=actor,
            at=now,
            object=target,
        )
    return TrustPinRefresh(
        id=row.id, url=row.url, accepted=True, version=bundle.version, reason=None
    )


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
