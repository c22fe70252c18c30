"""The credential catalogue.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credential_types",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("vct", sa.String(length=255), nullable=False),
        sa.Column("schema", sa.Text(), nullable=False),
        sa.Column("disclosable", sa.Text(), nullable=False),
        sa.Column("default_validity_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_credential_types")),
        sa.UniqueConstraint("vct", name=op.f("uq_credential_types_vct")),
    )


def downgrade() -> None:
    op.drop_table("credential_types")
