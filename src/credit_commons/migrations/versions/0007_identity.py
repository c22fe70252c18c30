"""Identity: identities, pseudonymised identifier links, access tokens, tombstones.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("verification_level", sa.String(length=32), nullable=False),
        sa.Column("owner_token", sa.String(length=40), nullable=True),
        sa.Column("profile_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("attributes_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_token"],
            ["identities.token"],
            name=op.f("fk_identities_owner_token_identities"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_identities")),
    )
    op.create_table(
        "identity_identifiers",
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("identity_token", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_token"],
            ["identities.token"],
            name=op.f("fk_identity_identifiers_identity_token_identities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pseudonym", name=op.f("pk_identity_identifiers")),
    )
    op.create_index("ix_identity_identifiers_token", "identity_identifiers", ["identity_token"])
    op.create_table(
        "access_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("principal", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_access_tokens")),
    )
    op.create_index("ix_access_tokens_principal", "access_tokens", ["principal"])
    op.create_table(
        "tombstones",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_tombstones")),
    )


def downgrade() -> None:
    op.drop_table("tombstones")
    op.drop_index("ix_access_tokens_principal", table_name="access_tokens")
    op.drop_table("access_tokens")
    op.drop_index("ix_identity_identifiers_token", table_name="identity_identifiers")
    op.drop_table("identity_identifiers")
    op.drop_table("identities")
