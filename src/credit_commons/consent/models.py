"""Tables of the consent domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = [
    "AccessAlertRow",
    "AccessCountRow",
    "AccessDenialCountRow",
    "AccessMonitorRow",
    "ConsentRow",
    "DiscoveryProfileRow",
    "EventTotalRow",
    "WebhookDeliveryRow",
]


class ConsentRow(Base):
    """A consent request and, once granted, its signed artefact (which never changes).

    ``principal`` is the borrower's pseudonym (what the artefact and the log carry);
    ``principal_token`` the opaque identity reference other tables use too.  ``scopes`` is
    JSON ``[{"type": ..., "claims": [...]}]``.  ``uses`` counts fetches; ``window`` and
    ``window_uses`` count them in the current frequency window (periodic consents).
    ``facilitator_token`` and ``facilitator_name_sealed`` name the field agent of an
    assisted consent (their identity, and their name sealed under their own data key:
    ``consent/assisted.py``); both are empty otherwise.
    """

    __tablename__ = "consents"
    __table_args__ = (
        Index("ix_consents_lender_principal", "lender_client_id", "principal"),
        Index("ix_consents_lender_id", "lender_client_id", "id"),
        Index("ix_consents_principal_id", "principal_token", "id"),
        Index("ix_consents_principal_status_id", "principal_token", "status", "id"),
        Index("ix_consents_status_expiry", "status", "expires_at"),
        Index(
            "ix_consents_facilitator_token",
            "facilitator_token",
            sqlite_where=text("facilitator_token IS NOT NULL"),
            postgresql_where=text("facilitator_token IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(40))
    lender_client_id: Mapped[str] = mapped_column(String(40))
    principal: Mapped[str] = mapped_column(String(64))
    principal_token: Mapped[str] = mapped_column(String(40))
    purpose_code: Mapped[str] = mapped_column(String(40))
    mode: Mapped[str] = mapped_column(String(8))
    fetch_type: Mapped[str] = mapped_column(String(10))
    frequency_unit: Mapped[str] = mapped_column(String(8))
    frequency_value: Mapped[int] = mapped_column(Integer)
    data_life_unit: Mapped[str] = mapped_column(String(8))
    data_life_value: Mapped[int] = mapped_column(Integer)
    scopes: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    artefact: Mapped[str | None] = mapped_column(Text)
    approval: Mapped[str | None] = mapped_column(String(16))
    facilitator: Mapped[str | None] = mapped_column(String(64))
    facilitator_token: Mapped[str | None] = mapped_column(String(40))
    facilitator_name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    otp_hash: Mapped[str | None] = mapped_column(String(64))
    otp_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    otp_attempts: Mapped[int] = mapped_column(Integer, default=0)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    window: Mapped[int] = mapped_column(Integer, default=-1)
    window_uses: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookDeliveryRow(Base):
    """A signed notification to a lender, delivered with retries by the worker."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    lender_client_id: Mapped[str] = mapped_column(String(40))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the signed JWS, as sent
    state: Mapped[str] = mapped_column(String(12))  # PENDING, DELIVERED, DEAD
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DiscoveryProfileRow(Base):
    """A borrower who opted in to discovery: only public categorical attributes."""

    __tablename__ = "discovery_profiles"
    __table_args__ = (
        Index("ix_discovery_profiles_tier_opted_in", "credit_tier", "opted_in_at"),
        Index("ix_discovery_profiles_opted_in", "opted_in_at"),
    )

    principal_token: Mapped[str] = mapped_column(String(40), primary_key=True)
    credit_tier: Mapped[str] = mapped_column(String(4))
    income_bracket: Mapped[str] = mapped_column(String(16))
    debt_ratio_bracket: Mapped[str] = mapped_column(String(16))
    opted_in_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AccessDenialCountRow(Base):
    """How many refusals that named no existing consent or borrower (no, forged or expired
    token, unknown consent, unknown client) there were per hour, operation, reason and
    actor.

    Such a refusal is about nobody's data, so it is counted here instead of becoming a
    permanent log event a stranger could add without bound.  Operations are route names
    and reasons error codes, both fixed sets; the actor is the pseudonym of a registered
    lender whose own signature verified, or of ``anonymous`` — a stranger cannot make new
    ones.  So the table holds at most (hours kept) x (operations) x (reasons) x (lenders
    + 1) rows whatever the traffic; retention drops old hours.
    """

    __tablename__ = "access_denial_counts"

    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    operation: Mapped[str] = mapped_column(String(128), primary_key=True)
    reason: Mapped[str] = mapped_column(String(128), primary_key=True)
    actor: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class AccessMonitorRow(Base):
    """Where the access monitor (``consent/monitor.py``) has read the log up to: the next
    leaf index, committed with what it counted and raised from the leaves before it."""

    __tablename__ = "access_monitor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AccessCountRow(Base):
    """The monitor's counts per window: ``kind`` ``denials`` (``key`` a borrower's
    pseudonym, ``bucket`` the start of a denial window) or ``retrievals`` (``key`` a
    lender's pseudonym, ``bucket`` the hour).  Rows older than the baseline are pruned."""

    __tablename__ = "access_counts"
    __table_args__ = (Index("ix_access_counts_bucket", "bucket"),)

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class AccessAlertRow(Base):
    """One raised anomalous-access alert; the key (kind, subject, window) is what makes it
    raised once."""

    __tablename__ = "access_alerts"

    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    window: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40))
    count: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventTotalRow(Base):
    """How many events of each (type, operation, reason) the monitor has read: the
    counters ``/metrics`` reports (``operation`` and ``reason`` are the access events'
    machine tokens, or an alert's kind, else empty), so a scrape reads a few rows."""

    __tablename__ = "event_totals"

    type: Mapped[str] = mapped_column(String(64), primary_key=True)
    operation: Mapped[str] = mapped_column(String(128), primary_key=True)
    reason: Mapped[str] = mapped_column(String(128), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
