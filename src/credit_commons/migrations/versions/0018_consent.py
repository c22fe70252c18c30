"""Consent requests and artefacts, webhook deliveries, discovery profiles.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("template", sa.String(40), nullable=False),
        sa.Column("lender_client_id", sa.String(40), nullable=False),
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("principal_token", sa.String(40), nullable=False),
        sa.Column("purpose_code", sa.String(40), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("fetch_type", sa.String(10), nullable=False),
        sa.Column("frequency_unit", sa.String(8), nullable=False),
        sa.Column("frequency_value", sa.Integer, nullable=False),
        sa.Column("data_life_unit", sa.String(8), nullable=False),
        sa.Column("data_life_value", sa.Integer, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("starts_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("artefact", sa.Text),
        sa.Column("approval", sa.String(16)),
        sa.Column("facilitator", sa.String(64)),
        sa.Column("otp_hash", sa.String(64)),
        sa.Column("otp_expires_at", _TS),
        sa.Column("otp_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("uses", sa.Integer, nullable=False, server_default="0"),
        sa.Column("window", sa.Integer, nullable=False, server_default="-1"),
        sa.Column("window_uses", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_consents_lender_principal", "consents", ["lender_client_id", "principal"])
    op.create_index("ix_consents_principal_status", "consents", ["principal_token", "status"])
    op.create_index("ix_consents_status_expiry", "consents", ["status", "expires_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("lender_client_id", sa.String(40), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("last_status", sa.Integer),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["state", "next_attempt_at"])
    op.create_table(
        "discovery_profiles",
        sa.Column("principal_token", sa.String(40), primary_key=True),
        sa.Column("credit_tier", sa.String(4), nullable=False),
        sa.Column("income_bracket", sa.String(16), nullable=False),
        sa.Column("debt_ratio_bracket", sa.String(16), nullable=False),
        sa.Column("opted_in_at", _TS, nullable=False),
    )
    op.create_index("ix_discovery_profiles_credit_tier", "discovery_profiles", ["credit_tier"])


def downgrade() -> None:
    op.drop_table("discovery_profiles")
    op.drop_table("webhook_deliveries")
    op.drop_table("consents")
