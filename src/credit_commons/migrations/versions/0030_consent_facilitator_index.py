"""An index of the consents a field agent helped with (``facilitator_token``), partial on the
rows that have one, so that erasing an agent finds the consents naming them without reading
every consent (``consent.service.forget_subject``).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_consents_facilitator_token",
        "consents",
        ["facilitator_token"],
        sqlite_where=sa.text("facilitator_token IS NOT NULL"),
        postgresql_where=sa.text("facilitator_token IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_consents_facilitator_token", table_name="consents")
