"""The field agent who helped with an assisted consent, by name (issue 17).

Until now a consent named its facilitator only by pseudonym (``facilitator``), which the
borrower cannot read.  ``facilitator_token`` is the agent's identity (the opaque reference
``principal_token`` is for the borrower) and ``facilitator_name_sealed`` the agent's name as
registered when they helped, sealed by the vault under the agent's own data key, so the
borrower can be shown who helped them and the agent's erasure makes it unreadable.  Both
are empty for every consent that was not assisted.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("facilitator_token", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("facilitator_name_sealed", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("facilitator_name_sealed")
        batch.drop_column("facilitator_token")
