"""Delegations between identities.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delegations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("delegator_token", sa.String(length=40), nullable=False),
        sa.Column("delegatee_token", sa.String(length=40), nullable=False),
        sa.Column("permissions", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delegator_accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delegatee_accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delegator_token"],
            ["identities.token"],
            name=op.f("fk_delegations_delegator_token_identities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["delegatee_token"],
            ["identities.token"],
            name=op.f("fk_delegations_delegatee_token_identities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delegations")),
    )
    op.create_index(
        "ix_delegations_delegatee", "delegations", ["delegatee_token", "delegator_token"]
    )
    op.create_index("ix_delegations_delegator", "delegations", ["delegator_token"])


def downgrade() -> None:
    op.drop_index("ix_delegations_delegator", table_name="delegations")
    op.drop_index("ix_delegations_delegatee", table_name="delegations")
    op.drop_table("delegations")
