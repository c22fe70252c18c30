"""Service-to-service auth (issue 21, item 2): the public keys of service instances outside
the platform's processes (full nodes, committee members), registered by the operator and
rotated by the service itself; each signs its own service tokens (docs/operations.md,
"Service-to-service auth").

Revision ID: 0052
Revises: 0055
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0052"
down_revision = "0055"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registered_service_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("service", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registered_service_keys")),
        sa.UniqueConstraint("kid", name=op.f("uq_registered_service_keys_kid")),
        sa.UniqueConstraint(
            "service", "name", "version", name="uq_registered_service_keys_service_name_version"
        ),
    )


def downgrade() -> None:
    op.drop_table("registered_service_keys")
