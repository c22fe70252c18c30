"""The borrower's sign-in by one-time code in the web console (issue 17).

``web_signin_codes`` holds, per code sent, the SHA-256 of the random challenge id in the
browser's cookie (never the id), the identity it was sent to, a keyed hash of the code
(never the code), its wrong tries and its times; indexed by identity and time (at most a
few codes an hour per identity) and by time (rows older than an hour are deleted).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_signin_codes",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_web_signin_codes")),
    )
    op.create_index(
        "ix_web_signin_codes_subject_created", "web_signin_codes", ["subject", "created_at"]
    )
    op.create_index("ix_web_signin_codes_created_at", "web_signin_codes", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_web_signin_codes_created_at", table_name="web_signin_codes")
    op.drop_index("ix_web_signin_codes_subject_created", table_name="web_signin_codes")
    op.drop_table("web_signin_codes")
