"""Trusted issuers and credential offers served by reference.

``trusted_issuers`` is the verifier's trust list: issuers (an https issuer URL, a did:web
or a did:key) whose credentials verification accepts besides this platform's own.
``credential_offers.sealed_offer`` keeps a by-reference offer (it holds the pre-authorized
code, so it is sealed in the vault) for every replica, until the offer expires.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trusted_issuers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_issuers")),
        sa.UniqueConstraint("issuer", name=op.f("uq_trusted_issuers_issuer")),
    )
    with op.batch_alter_table("credential_offers") as batch:
        batch.add_column(sa.Column("sealed_offer", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credential_offers") as batch:
        batch.drop_column("sealed_offer")
    op.drop_table("trusted_issuers")
