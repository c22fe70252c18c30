"""Checkpoint committee (issue 20, item 3): the registered committees (time-locked), the
members' partial signatures and equivocations, the group signature lines; and, on a member
node, its wrapped key share and its own copy of the log (frontier, last signed head).

Revision ID: 0046
Revises: 0043
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0046"
down_revision = "0043"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "committee_configs",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("group_key", sa.LargeBinary(), nullable=False),
        sa.Column("member_keys", sa.LargeBinary(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_committee_configs")),
        sa.UniqueConstraint("group_key", name=op.f("uq_committee_configs_group_key")),
    )
    for table in ("committee_partials", "committee_equivocations"):
        extra = (
            [sa.Column("event_id", sa.String(length=40), nullable=False)]
            if table == "committee_equivocations"
            else []
        )
        op.create_table(
            table,
            sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("member", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("root", sa.LargeBinary(), nullable=False),
            sa.Column("signature", sa.LargeBinary(), nullable=False),
            *extra,
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("version", "size", "member", name=op.f(f"pk_{table}")),
        )
    op.create_table(
        "committee_signatures",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_committee_signatures")),
    )
    op.create_table(
        "committee_shares",
        sa.Column("group", sa.String(length=96), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("member", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("member_keys", sa.LargeBinary(), nullable=False),
        sa.Column("wrapped", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group", name=op.f("pk_committee_shares")),
    )
    op.create_table(
        "committee_member_state",
        sa.Column("group", sa.String(length=96), nullable=False),
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.Column("signed_size", sa.BigInteger(), nullable=True),
        sa.Column("signed_root", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group", name=op.f("pk_committee_member_state")),
    )


def downgrade() -> None:
    for table in (
        "committee_member_state",
        "committee_shares",
        "committee_signatures",
        "committee_equivocations",
        "committee_partials",
        "committee_configs",
    ):
        op.drop_table(table)
