"""Full node scoring (issue 20): the memberships a node mirrors to score the followed
platform's reputation events (``node_members``), and the index the platform serves its
member documents by (``reputation_members.event_id``).

Revision ID: 0054
Revises: 0046
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0054"
down_revision = "0046"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_reputation_members_event_id"), "reputation_members", ["event_id"], unique=False
    )
    op.create_table(
        "node_members",
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("did", sa.String(length=128), nullable=False),
        sa.Column("kyc", sa.Boolean(), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("vct", sa.String(length=512), nullable=False),
        sa.Column("credential_sha256", sa.String(length=64), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_node_members")),
    )


def downgrade() -> None:
    op.drop_table("node_members")
    op.drop_index(op.f("ix_reputation_members_event_id"), table_name="reputation_members")
