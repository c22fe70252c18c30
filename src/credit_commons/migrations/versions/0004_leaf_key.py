"""An indexed 8-byte leaf-hash key on log entries (proofs by leaf hash).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("log_entries") as batch:
        batch.add_column(sa.Column("leaf_key", sa.BigInteger(), nullable=True))
    # Fill existing rows: the first 8 bytes of SHA-256(0x00 || entry) (RFC 9162 §2.1.1),
    # as a signed big-endian integer.
    connection = op.get_bind()
    entries = sa.table(
        "log_entries",
        sa.column("leaf_index", sa.BigInteger()),
        sa.column("entry", sa.LargeBinary()),
        sa.column("leaf_key", sa.BigInteger()),
    )
    rows = connection.execute(sa.select(entries.c.leaf_index, entries.c.entry)).all()
    for index, entry in rows:
        connection.execute(
            sa.update(entries)
            .where(entries.c.leaf_index == index)
            .values(
                leaf_key=int.from_bytes(
                    hashlib.sha256(b"\x00" + bytes(entry)).digest()[:8], "big", signed=True
                )
            )
        )
    with op.batch_alter_table("log_entries") as batch:
        batch.alter_column("leaf_key", existing_type=sa.BigInteger(), nullable=False)
        batch.create_index("ix_log_entries_leaf_key", ["leaf_key"])


def downgrade() -> None:
    with op.batch_alter_table("log_entries") as batch:
        batch.drop_index("ix_log_entries_leaf_key")
        batch.drop_column("leaf_key")
