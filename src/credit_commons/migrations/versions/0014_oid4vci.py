"""OID4VCI: credential offers and proof nonces.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credential_offers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("tx_code_hash", sa.String(length=64), nullable=True),
        sa.Column("type_name", sa.String(length=64), nullable=False),
        sa.Column("subject_token", sa.String(length=40), nullable=False),
        sa.Column("sealed_claims", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("access_token_hash", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential_offers")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_credential_offers_code_hash")),
        sa.UniqueConstraint(
            "access_token_hash", name=op.f("uq_credential_offers_access_token_hash")
        ),
    )
    op.create_table(
        "issuer_nonces",
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce_hash", name=op.f("pk_issuer_nonces")),
    )


def downgrade() -> None:
    op.drop_table("issuer_nonces")
    op.drop_table("credential_offers")
