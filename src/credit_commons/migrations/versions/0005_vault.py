"""Vault: subject keys wrapped by the KMS master key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vault_subject_keys",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kek_id", sa.String(length=64), nullable=False),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_vault_subject_keys")),
        sa.UniqueConstraint("subject", "purpose", "version", name="uq_vault_subject_keys_spv"),
    )
    op.create_index(
        "ix_vault_subject_keys_kek_version", "vault_subject_keys", ["kek_version", "key_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_vault_subject_keys_kek_version", table_name="vault_subject_keys")
    op.drop_table("vault_subject_keys")
