"""What a wallet is told of the verifier asking, and why presentations were discarded.

``vp_transactions.client_name``: the name of the lender that made the request, put in the
request's ``client_metadata.client_name`` (RFC 7591 §2; OpenID4VP 1.0 §5.1 takes any client
metadata there), so a holder's consent screen can say which lender asks — every lender
shares the platform's client identifier.  ``discarded``: the presentations of a response
that the pipeline discarded (OpenID4VP 1.0 §8.6), each with its query id and reason, as
JSON.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vp_transactions") as batch:
        batch.add_column(sa.Column("client_name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("discarded", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vp_transactions") as batch:
        batch.drop_column("discarded")
        batch.drop_column("client_name")
