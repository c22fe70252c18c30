"""Backup and restore (issue 21, item 7): the backup-restore mode of a restored instance — the
backup it was restored from, the log size and root of that backup, and when (and by whom) the
operator confirmed it.  A row without ``confirmed_at`` holds the instance in restore mode: it
serves reads and refuses writes (docs/operations.md, "Backup and restore").

Revision ID: 0051
Revises: 0048
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0051"
down_revision = "0048"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "restore_mode",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("backup_id", sa.String(length=64), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("log_size", sa.BigInteger(), nullable=False),
        sa.Column("log_root", sa.String(length=64), nullable=False),
        sa.Column("restored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_event", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restore_mode")),
    )


def downgrade() -> None:
    op.drop_table("restore_mode")
