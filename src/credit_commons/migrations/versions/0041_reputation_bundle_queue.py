"""Issue 19 (review finding): score bundles are built off the request path.  A fetch of a
record with no bundle yet marks it requested (``bundle_requested_at``) and answers 202; a
jobs step builds the requested bundles, oldest request first, through the index, or
records why one cannot be built (``bundle_refused``: too many inputs).

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0041"
down_revision = "0040"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reputation_scores") as batch:
        batch.add_column(
            sa.Column("bundle_requested_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("bundle_refused", sa.String(length=64), nullable=True))
        batch.create_index(
            op.f("ix_reputation_scores_bundle_requested_at"), ["bundle_requested_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("reputation_scores") as batch:
        batch.drop_index(op.f("ix_reputation_scores_bundle_requested_at"))
        batch.drop_column("bundle_refused")
        batch.drop_column("bundle_requested_at")
