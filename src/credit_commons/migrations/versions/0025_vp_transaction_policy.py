"""The policy of an OpenID4VP transaction: whose policy it is and the purpose declared.

``vp_transactions.policy_owner``: the verifier whose policy the request was made under (the
lender's own, or the platform's, ``platform``), beside ``policy_id`` (now up to 64
characters, the length of a policy id); ``purpose``: the purpose the request declares,
which a policy's ``require_purpose`` rule (and the ``india-dpdp`` profile) asks for.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vp_transactions") as batch:
        batch.add_column(sa.Column("policy_owner", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("purpose", sa.String(length=64), nullable=True))
        batch.alter_column(
            "policy_id", existing_type=sa.String(length=40), type_=sa.String(length=64)
        )


def downgrade() -> None:
    with op.batch_alter_table("vp_transactions") as batch:
        batch.alter_column(
            "policy_id", existing_type=sa.String(length=64), type_=sa.String(length=40)
        )
        batch.drop_column("purpose")
        batch.drop_column("policy_owner")
