"""Federation (issue 20, item 1): the cursor of each NATS JetStream publisher — the next
leaf index of the spine's events, the last checkpoint size — committed after JetStream
acknowledged the messages up to it.

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0042"
down_revision = "0041"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_federation_cursors")),
    )


def downgrade() -> None:
    op.drop_table("federation_cursors")
