"""The credential registry (hashes and metadata; credentials sealed in the vault).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("type_name", sa.String(length=64), nullable=False),
        sa.Column("subject_token", sa.String(length=40), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("status_list_id", sa.String(length=40), nullable=False),
        sa.Column("status_index", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_credentials_token_hash")),
    )
    op.create_index("ix_credentials_subject_token", "credentials", ["subject_token"])


def downgrade() -> None:
    op.drop_index("ix_credentials_subject_token", table_name="credentials")
    op.drop_table("credentials")
