"""The lender's web console (issue 17): console tokens, and the index its list of requests
reads.

``lender_console_tokens`` holds the tokens an administrator issues to a lender's staff
(``commons admin lender console-token``): the SHA-256 of the secret only, the client it is
bound to, a label, its times and, once revoked, when.  ``ix_consents_lender_id`` serves a
lender's consent requests newest first, a page at a time, without reading the others.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lender_console_tokens",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lender_console_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_lender_console_tokens_token_hash")),
    )
    op.create_index("ix_lender_console_tokens_client", "lender_console_tokens", ["client_id"])
    op.create_index("ix_consents_lender_id", "consents", ["lender_client_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_consents_lender_id", table_name="consents")
    op.drop_index("ix_lender_console_tokens_client", table_name="lender_console_tokens")
    op.drop_table("lender_console_tokens")
