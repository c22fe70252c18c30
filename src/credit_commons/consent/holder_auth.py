"""Requests signed by a borrower's DID key: how a wallet acts for its holder without a
bearer token.

A wallet sends ``Authorization: Holder <proof>``, where the proof is a compact JWS
(``typ: holder-request+jwt``) signed by the key of the DID in the identity's profile, over::

    {"sub": "idt_…",           the identity the wallet acts as
     "htm": "GET",             the request's method            (as DPoP, RFC 9449 §4.2)
     "htu": "/v1/borrowers/…", the request's path and query    (DPoP's htu, without the
                                scheme and host a proxy may change)
     "bdh": "<b64url SHA-256 of the request body>",
     "iat": 1700000000,        when it was signed (seconds)
     "jti": "<16 to 256 characters, fresh each time>"}

Verification, in order (:func:`authenticate`); each refusal is the same 401 and, when the
proof names an existing identity, an ``access.denied`` event in that borrower's history
(operation ``holder.request``, the reason below), else a count (consent/access.py):

1. the proof is a compact JWS of that ``typ`` naming an existing identity
   (``holder.proof_malformed``, counted);
2. the identity has a DID in its profile and it resolves to a key (``holder.no_did``);
3. the signature verifies under that key (``holder.signature_invalid``);
4. ``htm``, ``htu`` and ``bdh`` are this request's (``holder.request_mismatch``);
5. ``iat`` is within :data:`WINDOW` seconds of now (``holder.proof_stale``);
6. the ``jti`` was never used by this identity (``holder.proof_replayed``): it is stored,
   hashed, until the proof could no longer be fresh, in the table that keeps used client
   assertions (a unique key, so two copies racing fail too).

The caller becomes ``Principal(token, HOLDER_ROLE)``: the identity itself, for whatever
the identity may do; consent decisions record it as ``approval: did``.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy.orm import Session

from credit_commons.consent.access import NotAuthenticated, anonymous_actor
from credit_commons.consent.schemas import HolderKeyChanged
from credit_commons.core.encoding import JsonObject, b64url_decode, b64url_encode
from credit_commons.core.errors import CommonsError, NotFoundError, ValidationError
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.jws import parse_compact, verify_compact
from credit_commons.identity import Principal, replace_did, rotation_message, subject_of
from credit_commons.identity import service as identity_service
from credit_commons.keys import ACCEPTED_ALGS, DidResolver, PublicKey
from credit_commons.lenders import consume_assertion_id
from credit_commons.runtime import Runtime

__all__ = [
    "HOLDER_ROLE",
    "OPERATION",
    "SCHEME",
    "TYP",
    "WINDOW",
    "authenticate",
    "body_digest",
    "change_key",
    "holder_did",
    "holder_key",
]

SCHEME = "Holder"
"""The ``Authorization`` scheme of a holder-signed request."""
TYP = "holder-request+jwt"
HOLDER_ROLE = "holder"
"""The role of a principal authenticated by its DID key."""
OPERATION = "holder.request"
WINDOW = 60
"""Seconds a proof's ``iat`` may be from the platform's clock, either way."""
_MAX_JTI = 256
_MIN_JTI = 16
# The replay table's client column names what kind of signer a stored jti belongs to.
_REPLAY_OWNER = "holder"


def body_digest(body: bytes) -> str:
    """The ``bdh`` claim: base64url SHA-256 of the request body (of ``b""`` when none)."""
    return b64url_encode(hashlib.sha256(body).digest())


def holder_did(session: Session, rt: Runtime, token: str) -> str:
    """The DID in identity ``token``'s profile.

    Raises :class:`NotFoundError` when the identity does not exist or has no DID.
    """
    did = identity_service.registered_did(session, rt, token)
    if did is None:
        raise NotFoundError("no such identity")
    return did


def holder_key(session: Session, rt: Runtime, token: str) -> PublicKey:
    """The public key of the DID in identity ``token``'s profile (``did:key`` locally,
    ``did:web`` through the SSRF guard).

    Raises :class:`NotFoundError` when there is none or it does not resolve.
    """
    did = holder_did(session, rt, token)
    resolver, fetcher = _resolver(rt)
    try:
        return resolver.resolve_key(did)
    except CommonsError as e:
        raise NotFoundError("no such identity") from e
    finally:
        fetcher.close()


def _refusal(rt: Runtime, reason: str, subject: str | None) -> NotAuthenticated:
    return NotAuthenticated(
        operation=OPERATION, reason=reason, actor=anonymous_actor(rt), subject=subject
    )


def authenticate(
    session: Session,
    rt: Runtime,
    proof: str,
    *,
    method: str,
    target: str,
    body: bytes,
) -> Principal:
    """The principal a holder-signed request (``proof``, the JWS after the scheme) acts
    as, for the request ``method target`` (path and query) with ``body``.

    Raises :class:`NotAuthenticated` (401, recorded as the module says) for any failure.
    """
    # 1. A JWS of our typ naming an existing identity.
    try:
        jws = parse_compact(proof, algs=ACCEPTED_ALGS)
    except CommonsError:
        raise _refusal(rt, "holder.proof_malformed", None) from None
    header, claims = jws.header, jws.payload
    token = claims.get("sub")
    if (
        header.get("typ") != TYP
        or not isinstance(token, str)
        or not token.startswith("idt_")
        or len(token) > 64
        or not identity_service.identity_exists(session, token)
    ):
        raise _refusal(rt, "holder.proof_malformed", None)
    subject = subject_of(rt, token)
    # 2. The identity's DID key.
    try:
        key = holder_key(session, rt, token)
    except NotFoundError:
        raise _refusal(rt, "holder.no_did", subject) from None
    # 3. The signature.
    try:
        verify_compact(proof, key, typ=TYP, algs=ACCEPTED_ALGS)
    except CommonsError:
        raise _refusal(rt, "holder.signature_invalid", subject) from None
    # 4. This request.
    if (
        claims.get("htm") != method
        or claims.get("htu") != target
        or claims.get("bdh") != body_digest(body)
    ):
        raise _refusal(rt, "holder.request_mismatch", subject)
    # 5. Fresh.
    now = rt.clock.now()
    issued = _int_claim(claims, "iat")
    if issued is None or abs(now.timestamp() - issued) > WINDOW:
        raise _refusal(rt, "holder.proof_stale", subject)
    # 6. Never seen.
    jti = claims.get("jti")
    if not isinstance(jti, str) or not _MIN_JTI <= len(jti) <= _MAX_JTI:
        raise _refusal(rt, "holder.proof_malformed", subject)
    if not consume_assertion_id(
        session,
        jti_hash=hashlib.sha256(f"{token}\n{jti}".encode()).hexdigest(),
        client_id=_REPLAY_OWNER,
        expires_at=now + timedelta(seconds=2 * WINDOW),
        now=now,
    ):
        raise _refusal(rt, "holder.proof_replayed", subject)
    return Principal(token, HOLDER_ROLE)


def _int_claim(claims: JsonObject, name: str) -> int | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _resolver(rt: Runtime) -> tuple[DidResolver, OutboundFetcher]:
    fetcher = OutboundFetcher(
        allow_private=rt.settings.insecure_allow_private_network,
        allow_http=rt.settings.insecure_allow_http,
    )
    return DidResolver(fetcher), fetcher


def change_key(
    session: Session,
    rt: Runtime,
    principal: Principal,
    token: str,
    *,
    did: str,
    signature: str,
) -> HolderKeyChanged:
    """Replace the DID of identity ``token`` with ``did``, at a request signed by the
    current one (``principal`` authenticated by :func:`authenticate`), carrying the new
    key's signature (base64url) of ``identity.holder_key.rotation_message``.

    Raises :class:`NotFoundError` for anyone but the identity speaking with its current
    key (a bearer token, a delegate, an administrator: the same 404 as an unknown
    identity), and :class:`ValidationError` when the new DID does not resolve or its
    signature does not verify.
    """
    if principal.role != HOLDER_ROLE or principal.subject != token:
        raise NotFoundError("no such identity")
    resolver, fetcher = _resolver(rt)
    try:
        key = resolver.resolve_key(did)
        key.verify(
            key.key_type.jose_alg,
            rotation_message(token, did),
            b64url_decode(signature),
        )
    except CommonsError as e:
        raise ValidationError(
            "the new key's signature does not verify", extra={"field": "signature"}
        ) from e
    finally:
        fetcher.close()
    event_id = replace_did(session, rt, token, did)
    return HolderKeyChanged(identity=token, did=did, event_id=event_id)
