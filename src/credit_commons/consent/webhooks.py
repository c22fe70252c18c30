"""Signed, retried webhooks to lenders on every consent state change.

Each change queues one delivery in the same transaction as the change: a compact JWS
(``typ: consent-event+jwt``, the platform's ``consent`` key, published at
``/v1/consents/jwks``) whose payload says which consent, its new status, the event id and
when.  The worker POSTs it (``Content-Type: application/jwt``) to the lender's webhook URL
through the SSRF guard; a 2xx answer delivers it, anything else is retried with
exponential backoff and jitter (10 s doubling, at most an hour) and given up (``DEAD``)
after eight attempts.  Lenders without a webhook URL get nothing queued.

The operator's anomalous-access alerts (``consent/monitor.py``) go the same way: a JWS of
``typ: access-alert+jwt`` under the same key, queued for :data:`OPERATOR` and POSTed to
``COMMONS_ALERT_WEBHOOK_URL`` (nothing is queued while it is unset).
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

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

__all__ = [
    "ALERT_TYP",
    "MAX_ATTEMPTS",
    "OPERATOR",
    "WEBHOOK_TYP",
    "deliver_due",
    "enqueue",
    "enqueue_alert",
    "pending_deliveries",
]

WEBHOOK_TYP = "consent-event+jwt"
ALERT_TYP = "access-alert+jwt"
MAX_ATTEMPTS = 8
OPERATOR = "operator"
"""The addressee of alert deliveries (never a lender client id: those start ``lnd_``)."""


def _webhook_url(session: Session, rt: Runtime, client_id: str) -> str | None:
    if client_id == OPERATOR:
        return rt.settings.alert_webhook_url
    client = get_client(session, client_id)
    return None if client is None else client.webhook_url


def _queue(session: Session, rt: Runtime, client_id: str, token: str) -> None:
    now = rt.clock.now()
    session.add(
        WebhookDeliveryRow(
            id=new_id("whd"),
            lender_client_id=client_id,
            body=token.encode("ascii"),
            state="PENDING",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


def enqueue_alert(session: Session, rt: Runtime, alert: dict[str, object]) -> bool:
    """Queue the signed notice of a raised alert (``alert``: its machine fields, the
    ``alert.raised`` event's id among them) for the operator, in the caller's transaction;
    whether one was queued (not while ``COMMONS_ALERT_WEBHOOK_URL`` is unset)."""
    if rt.settings.alert_webhook_url is None:
        return False
    signer = consent_signer(session, rt)
    claims = {
        "iss": rt.settings.public_url,
        "aud": OPERATOR,
        "iat": int(rt.clock.now().timestamp()),
        "jti": new_id("whk"),
        **alert,
    }
    token = sign_compact({"typ": ALERT_TYP, "kid": signer.kid}, claims, signer)
    _queue(session, rt, OPERATOR, token)
    return True


def pending_deliveries(session: Session, cap: int) -> int:
    """How many deliveries wait (PENDING), counted up to ``cap`` (a bounded read for
    ``/metrics``)."""
    waiting = select(WebhookDeliveryRow.id).where(WebhookDeliveryRow.state == "PENDING").limit(cap)
    return int(session.scalar(select(func.count()).select_from(waiting.subquery())) or 0)


def enqueue(session: Session, rt: Runtime, row: ConsentRow, event_id: str) -> None:
    """Queue the signed notice of ``row``'s current status (if the lender has a URL)."""
    if _webhook_url(session, rt, row.lender_client_id) is None:
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
    _queue(session, rt, row.lender_client_id, token)


def deliver_due(
    rt: Runtime, *, fetcher: OutboundFetcher | None = None, limit: int = 50
) -> dict[str, int]:
    """POST the deliveries that are due; returns counts by outcome."""
    counts = {"delivered": 0, "retry": 0, "dead": 0}
    with transaction(rt.sessions) as session:
        due = [
            (d.id, bytes(d.body), _webhook_url(session, rt, d.lender_client_id))
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
