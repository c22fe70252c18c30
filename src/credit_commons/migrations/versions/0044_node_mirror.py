"""Full node (issue 20, item 2): its pins, verified messages, mirrored log tree,
checkpoints, blobs and status lists, refused forks and counters.

Revision ID: 0044
Revises: 0042
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0044"
down_revision = "0042"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "node_pins",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("pinned_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_node_pins")),
    )
    op.create_table(
        "node_messages",
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("stream", "position", name=op.f("pk_node_messages")),
    )
    op.create_table(
        "node_tree",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_node_tree")),
    )
    op.create_table(
        "node_checkpoints",
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("received_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_node_checkpoints")),
    )
    op.create_table(
        "node_forks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_forks")),
    )
    op.create_table(
        "node_blobs",
        sa.Column("cid", sa.String(length=128), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("cid", name=op.f("pk_node_blobs")),
    )
    op.create_table(
        "node_status_lists",
        sa.Column("list_id", sa.String(length=64), nullable=False),
        sa.Column("uri", sa.String(length=512), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("fetched_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("list_id", name=op.f("pk_node_status_lists")),
    )
    op.create_table(
        "node_counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_node_counters")),
    )


def downgrade() -> None:
    for table in (
        "node_counters",
        "node_status_lists",
        "node_blobs",
        "node_forks",
        "node_checkpoints",
        "node_tree",
        "node_messages",
        "node_pins",
    ):
        op.drop_table(table)
