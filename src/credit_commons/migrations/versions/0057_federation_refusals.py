"""Federation: the streams the publisher refuses to publish to because they hold another
platform's messages (two platforms on one NATS account), so ``/metrics`` shows the refusal
whichever process runs the publisher.

Revision ID: 0057
Revises: 0056
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0057"
down_revision = "0056"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_refusals",
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("other", sa.String(length=256), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream", name=op.f("pk_federation_refusals")),
    )


def downgrade() -> None:
    op.drop_table("federation_refusals")
