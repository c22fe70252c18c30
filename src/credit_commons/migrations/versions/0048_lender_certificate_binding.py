"""Lenders (issue 21, item 1): a lender's registered TLS client certificate, as its RFC 8705
``x5t#S256`` thumbprint (base64url SHA-256 of the DER certificate, 43 characters).  A lender
with one gets only certificate-bound access tokens, and only over mutual TLS.

Revision ID: 0048
Revises: 0045
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0048"
down_revision = "0045"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lender_clients") as batch:
        batch.add_column(sa.Column("certificate_thumbprint", sa.String(43), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lender_clients") as batch:
        batch.drop_column("certificate_thumbprint")
