"""The borrower's consents by id: ``(principal_token, id)`` for the borrower's list (newest
first, keyset by id) and ``(principal_token, status, id)`` for one status of it and for the
agent's pending list, replacing ``(principal_token, status)``, which is its prefix.

Without them, with 1,000,000 consents and no ANALYZE statistics, SQLite answered the agent's
"pending requests of this borrower" through ``(status, expires_at)`` — every pending consent of
every borrower, then sorted: 1.7 s (bench/web.py); the borrower's list sorted all of the
borrower's rows.  With them the newest rows are read in order and the query stops at its limit.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_consents_principal_id", "consents", ["principal_token", "id"])
    op.create_index(
        "ix_consents_principal_status_id", "consents", ["principal_token", "status", "id"]
    )
    op.drop_index("ix_consents_principal_status", table_name="consents")


def downgrade() -> None:
    op.create_index("ix_consents_principal_status", "consents", ["principal_token", "status"])
    op.drop_index("ix_consents_principal_status_id", table_name="consents")
    op.drop_index("ix_consents_principal_id", table_name="consents")
