"""Erasure that reaches backups and leaves no linkable trace (issue 13 items 2 and 3).

* ``erasure_epochs``: each epoch's erasures become unreadable in every backup once it
  closes (the master-key version is rotated, subject keys rewrapped, the old version
  destroyed in the KMS);
* ``vault_state``: one row every process checks before trusting its caches — an erasure
  generation (cached subject keys are dropped at once when it moves), the master-key
  version the last epoch moved to and the versions it destroyed;
* ``credentials.subject_token`` may be empty: erasure removes the identity token from the
  registry entries of the subject's credentials (they stay verifiable by their holders).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-10
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    epochs = op.create_table(
        "erasure_epochs",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("opened_at", _TS, nullable=False),
        sa.Column("erasures", sa.Integer(), nullable=False),
        sa.Column("closing_at", _TS),
        sa.Column("kek_version", sa.Integer()),
        sa.Column("rewrapped", sa.Integer(), nullable=False),
        sa.Column("destroyed_versions", sa.String(255)),
        sa.Column("closed_at", _TS),
        sa.PrimaryKeyConstraint("number", name="pk_erasure_epochs"),
    )
    # The first epoch opens with the schema.
    op.bulk_insert(
        epochs, [{"number": 1, "opened_at": datetime.now(UTC), "erasures": 0, "rewrapped": 0}]
    )
    vault_state = op.create_table(
        "vault_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("erasure_generation", sa.Integer(), nullable=False),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("destroyed_below", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vault_state"),
    )
    op.bulk_insert(
        vault_state, [{"id": 1, "erasure_generation": 0, "kek_version": 0, "destroyed_below": 0}]
    )
    with op.batch_alter_table("credentials") as batch:
        batch.alter_column("subject_token", existing_type=sa.String(40), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.alter_column("subject_token", existing_type=sa.String(40), nullable=False)
    op.drop_table("vault_state")
    op.drop_table("erasure_epochs")
