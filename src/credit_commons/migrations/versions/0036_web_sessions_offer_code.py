"""The issuer desk's one-time view of an OID4VCI transaction code, kept with the officer's
session row (``offer_id``, ``offer_tx_code``, ``offer_tx_until``) instead of a cookie: the
code never leaves the server except in the one page that shows it, which clears it; an
unseen one is cleared two minutes on, or with the session (web/issuer_offers.py).

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(sa.Column("offer_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("offer_tx_code", sa.String(16), nullable=True))
        batch.add_column(sa.Column("offer_tx_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("offer_tx_until")
        batch.drop_column("offer_tx_code")
        batch.drop_column("offer_id")
