"""Signed, retried webhooks to lenders on every consent state change.

Each change queues one delivery in the same transaction as the change: a compact JWS
(``typ: consent-event+jwt``, the platform's ``consent`` key, published at
``/v1/consents/jwks``) whose payload says which consent, its new status, the event id and
when.  The worker POSTs it (``Content-Type: application/jwt``) to the lender's webhook URL
through the SSRF guard; a 2xx answer delivers it, anything else is retried with
exponential backoff and jitter (10 s doubling, at most an hour) and given up (``DEAD``)
after eight attempts.  Lenders without a webhook URL get nothing queued.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from credit_commons.consent.artefacts import consent_signer
from credit_commons.consent.models import ConsentRow, WebhookDeliveryRow
from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError
from credit_commons.core.ids import new_id
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.jws import sign_compact
from credit_commons.lenders import get_client
from credit_commons.runtime import Runtime

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["MAX_ATTEMPTS", "WEBHOOK_TYP", "deliver_due", "enqueue"]

WEBHOOK_TYP = "consent-event+jwt"
MAX_ATTEMPTS = 8


def _webhook_url(session: Session, client_id: str) -> str | None:
    client = get_client(session, client_id)
    return None if client is None else client.webhook_url


def enqueue(session: Session, rt: Runtime, row: ConsentRow, event_id: str) -> None:
    """Queue the signed notice of ``row``'s current status (if the lender has a URL)."""
    if _webhook_url(session, row.lender_client_id) is None:
        return
    now = rt.clock.now()
    signer = consent_signer(session, rt)
    token = sign_compact(
        {"typ": WEBHOOK_TYP, "kid": signer.kid},
        {
            "iss": rt.settings.public_url,
            "aud": row.lender_client_id,
            "iat": int(now.timestamp()),
            "jti": new_id("whk"),
            "consent_id": row.id,
            "status": row.status,
            "event_id": event_id,
        },
        signer,
    )
    session.add(
        WebhookDeliveryRow(
            id=new_id("whd"),
            lender_client_id=row.lender_client_id,
            body=token.encode("ascii"),
            state="PENDING",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


def deliver_due(
    rt: Runtime, *, fetcher: OutboundFetcher | None = None, limit: int = 50
) -> dict[str, int]:
    """POST the deliveries that are due; returns counts by outcome."""
    counts = {"delivered": 0, "retry": 0, "dead": 0}
    with transaction(rt.sessions) as session:
        due = [
            (d.id, bytes(d.body), _webhook_url(session, d.lender_client_id))
            for d in session.scalars(
                select(WebhookDeliveryRow)
                .where(
                    WebhookDeliveryRow.state == "PENDING",
                    WebhookDeliveryRow.next_attempt_at <= rt.clock.now(),
                )
                .order_by(WebhookDeliveryRow.next_attempt_at)
                .limit(limit)
            )
        ]
    if not due:
        return counts
    own = fetcher is None
    client = fetcher or OutboundFetcher(
        allow_private=rt.settings.insecure_allow_private_network,
        allow_http=rt.settings.insecure_allow_http,
    )
    try:
        for delivery_id, body, url in due:
            status = _post(client, url, body)
            _record(rt, delivery_id, status, counts)
    finally:
        if own:
            client.close()
    return counts


def _record(rt: Runtime, delivery_id: str, status: int | None, counts: dict[str, int]) -> None:
    with transaction(rt.sessions) as session:
        row = session.get(WebhookDeliveryRow, delivery_id)
        if row is None or row.state != "PENDING":
            return
        row.attempts += 1
        row.last_status = status
        if status is not None and 200 <= status < 300:
            row.state = "DELIVERED"
            counts["delivered"] += 1
        elif row.attempts >= MAX_ATTEMPTS:
            row.state = "DEAD"
            counts["dead"] += 1
        else:
            delay = min(3600.0, 10.0 * 2 ** (row.attempts - 1)) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter
            row.next_attempt_at = rt.clock.now() + timedelta(seconds=delay)
            counts["retry"] += 1


def _post(fetcher: OutboundFetcher, url: str | None, body: bytes) -> int | None:
    # The HTTP status, or None when the URL is refused or unreachable.
    if url is None:
        return None
    try:
        return fetcher.post(url, body, content_type="application/jwt")
    except CommonsError:
        return None
