"""Credential offers record the credential format (dc+sd-jwt or jwt_vc_json).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credential_offers") as batch:
        batch.add_column(
            sa.Column("format", sa.String(length=32), nullable=False, server_default="dc+sd-jwt")
        )


def downgrade() -> None:
    with op.batch_alter_table("credential_offers") as batch:
        batch.drop_column("format")
