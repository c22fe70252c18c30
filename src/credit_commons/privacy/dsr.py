"""Data-subject requests (seed 002 §10): request → confirm → a short-lived token → fulfil.

1. Anyone may *open* a request (export or erasure) for an identity token; the answer is the
   same whether or not the identity exists: a request id and a random challenge.
2. The subject *confirms* it either as the authenticated identity owner, or by signing
   ``credit-commons-dsr/v1 ‖ request id ‖ challenge ‖ kind`` with the key of the DID they
   registered (did:key locally, did:web through the SSRF-guarded fetcher).  Confirmation
   returns a token that lives ten minutes and is stored as its SHA-256 only.
3. The token *fulfils* the request exactly once (an atomic compare-and-set), running the
   export (:mod:`credit_commons.privacy.export`) or the erasure
   (:mod:`credit_commons.privacy.erasure`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.encoding import b64url_decode
from credit_commons.core.errors import CommonsError, ForbiddenError, NotFoundError
from credit_commons.core.ids import new_id
from credit_commons.core.net import OutboundFetcher
from credit_commons.identity import Principal
from credit_commons.identity import service as identity_service
from credit_commons.keys import DidResolver
from credit_commons.privacy.erasure import erase_subject
from credit_commons.privacy.export import export_subject
from credit_commons.privacy.models import DsrRequestRow
from credit_commons.privacy.schemas import DsrConfirmed, DsrOpened, ErasureReceipt, SubjectExport
from credit_commons.runtime import Runtime

__all__ = ["DsrKind", "confirm_request", "fulfil_request", "open_request", "signing_message"]

_REQUEST_TTL = timedelta(minutes=15)
_TOKEN_TTL = timedelta(minutes=10)


class DsrKind(StrEnum):
    """What the subject asks for."""

    EXPORT = "export"
    ERASURE = "erasure"


def signing_message(request_id: str, challenge: str, kind: str) -> bytes:
    """The bytes a subject signs with their DID key to confirm a request."""
    return f"credit-commons-dsr/v1\n{request_id}\n{challenge}\n{kind}\n".encode()


def _denied() -> ForbiddenError:
    return ForbiddenError("the request cannot be confirmed")


def open_request(session: Session, rt: Runtime, token: str, kind: DsrKind) -> DsrOpened:
    """Open a request; the same answer whether or not ``token`` exists."""
    now = rt.clock.now()
    row = DsrRequestRow(
        id=new_id("dsr"),
        identity_token=token,
        kind=kind.value,
        challenge=secrets.token_urlsafe(32),
        status="pending",
        expires_at=now + _REQUEST_TTL,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return DsrOpened(
        request_id=row.id,
        challenge=row.challenge,
        kind=row.kind,
        expires_at=utc(row.expires_at).isoformat(),
        sign=signing_message(row.id, row.challenge, row.kind).decode(),
    )


def _pending(session: Session, rt: Runtime, token: str, request_id: str) -> DsrRequestRow:
    row = session.get(DsrRequestRow, request_id)
    if (
        row is None
        or row.identity_token != token
        or row.status != "pending"
        or utc(row.expires_at) <= rt.clock.now()
    ):
        raise _denied()
    return row


def confirm_request(
    session: Session,
    rt: Runtime,
    token: str,
    request_id: str,
    *,
    principal: Principal | None = None,
    signature: str | None = None,
    resolver: DidResolver | None = None,
) -> DsrConfirmed:
    """Confirm as the owner (``principal``) or with a DID signature (base64url).

    Raises :class:`ForbiddenError` — one answer for every failure — otherwise.
    """
    row = _pending(session, rt, token, request_id)
    if not identity_service.identity_exists(session, token):
        raise _denied()
    if principal is None or principal.subject != token:
        if signature is None:
            raise _denied()
        try:
            did = identity_service.registered_did(session, rt, token)
            if did is None:
                raise _denied()
            if resolver is None:
                fetcher = OutboundFetcher(
                    allow_private=rt.settings.insecure_allow_private_network,
                    allow_http=rt.settings.insecure_allow_http,
                )
                resolver = DidResolver(fetcher)
            key = resolver.resolve_key(did)
            key.verify(
                key.key_type.jose_alg,
                signing_message(row.id, row.challenge, row.kind),
                b64url_decode(signature),
            )
        except CommonsError as e:
            raise _denied() from e
    dsr_token = "dsr_" + secrets.token_urlsafe(32)
    row.status = "confirmed"
    row.token_hash = hashlib.sha256(dsr_token.encode()).hexdigest()
    row.expires_at = rt.clock.now() + _TOKEN_TTL
    return DsrConfirmed(
        dsr_token=dsr_token, expires_at=utc(row.expires_at).isoformat(), kind=row.kind
    )


def fulfil_request(
    session: Session, rt: Runtime, token: str, dsr_token: str | None
) -> SubjectExport | ErasureReceipt:
    """Consume a confirmed request's token exactly once and run the export or erasure.

    Raises :class:`ForbiddenError` for a missing, unknown, expired or already used token.
    """
    if not dsr_token or not dsr_token.startswith("dsr_"):
        raise _denied()
    digest = hashlib.sha256(dsr_token.encode()).hexdigest()
    now = rt.clock.now()
    claimed = session.execute(
        update(DsrRequestRow)
        .where(
            DsrRequestRow.token_hash == digest,
            DsrRequestRow.identity_token == token,
            DsrRequestRow.status == "confirmed",
            DsrRequestRow.expires_at > now,
        )
        .values(status="fulfilled", token_hash=None)
        .returning(DsrRequestRow.kind)
    ).first()
    if claimed is None:
        raise _denied()
    owner = Principal(token, "identity")
    try:
        if claimed[0] == DsrKind.EXPORT:
            return export_subject(session, rt, owner, token)
        return erase_subject(session, rt, owner, token)
    except NotFoundError as e:
        raise _denied() from e
