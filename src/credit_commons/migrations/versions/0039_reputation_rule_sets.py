"""The reputation rule-set registry (issue 19 "Rules"): one row per (id, version), never
replaced — the RFC 8785 bytes of the rule set, their SHA-256, the registry's signed token,
when it was published and from when it is in effect.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0039"
down_revision = "0038"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reputation_rule_sets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dev", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", "version", name=op.f("pk_reputation_rule_sets")),
    )


def downgrade() -> None:
    op.drop_table("reputation_rule_sets")
