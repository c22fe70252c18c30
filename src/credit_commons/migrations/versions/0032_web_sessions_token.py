"""A console session keeps the SHA-256 of the platform token it was made with (issue 17).

``web_sessions.token_hash`` (nullable: a borrower who signs in by one-time code has no
token, a lender's session is checked against its console token) lets each request check
that the token still exists and has not expired, so an erased identity or a removed
administrator token ends the session at its next request.  Sessions made before this
revision have none: those of the token sign-in end at their next request.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(sa.Column("token_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("token_hash")
