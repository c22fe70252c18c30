"""Monitoring (issue 21 item 4): the access monitor's cursor over the log, its counts per
window, the alerts it raised (one per kind, subject and window) and the event totals
``/metrics`` reports.

The cursor starts at the log's current size: an existing deployment's history is not
replayed into alerts on upgrade (the totals count from the upgrade on).

Revision ID: 0050
Revises: 0051
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0050"
down_revision = "0051"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_monitor",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_access_monitor")),
    )
    op.create_table(
        "access_counts",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", "bucket", name=op.f("pk_access_counts")),
    )
    op.create_index("ix_access_counts_bucket", "access_counts", ["bucket"])
    op.create_table(
        "access_alerts",
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("window", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject", "window", name=op.f("pk_access_alerts")),
    )
    op.create_table(
        "event_totals",
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("type", "operation", "reason", name=op.f("pk_event_totals")),
    )
    op.execute(
        "INSERT INTO access_monitor (name, position) "
        "SELECT 'access', size FROM log_state WHERE id = 1"
    )


def downgrade() -> None:
    op.drop_table("event_totals")
    op.drop_table("access_alerts")
    op.drop_index("ix_access_counts_bucket", table_name="access_counts")
    op.drop_table("access_counts")
    op.drop_table("access_monitor")
