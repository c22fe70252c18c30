"""Full node (issue 20, item 2): the rule sets it mirrors, each version's signed token
verified under the platform's registry keys.

Revision ID: 0045
Revises: 0044
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0045"
down_revision = "0044"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_rule_sets",
        sa.Column("rule_set", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rule_set", "version", name=op.f("pk_node_rule_sets")),
    )


def downgrade() -> None:
    op.drop_table("node_rule_sets")
