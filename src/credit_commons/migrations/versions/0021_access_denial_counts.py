"""Counts of refusals that name no consent or borrower, per hour (issue 12 item 7).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_denial_counts",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operation", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "bucket", "operation", "reason", "actor", name="pk_access_denial_counts"
        ),
    )


def downgrade() -> None:
    op.drop_table("access_denial_counts")
