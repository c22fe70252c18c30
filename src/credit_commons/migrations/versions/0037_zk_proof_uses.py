"""The proofs verifiers accepted (issue 18 §5), by the SHA-256 of their canonical JSON: a proof
is one-time, so one presented again is refused ``zk_proof_replayed``.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "zk_proof_uses",
        sa.Column("proof_sha256", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("proof_sha256", name=op.f("pk_zk_proof_uses")),
    )


def downgrade() -> None:
    op.drop_table("zk_proof_uses")
