"""Full log tiles store their internal nodes of heights 4..7.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from credit_commons.formats.tlog_tiles import TILE_WIDTH, upper_levels

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("log_tiles") as batch:
        batch.add_column(sa.Column("upper", sa.LargeBinary(), nullable=True))
    tiles = sa.table(
        "log_tiles",
        sa.column("level", sa.Integer()),
        sa.column("idx", sa.BigInteger()),
        sa.column("hashes", sa.LargeBinary()),
        sa.column("upper", sa.LargeBinary()),
    )
    connection = op.get_bind()
    full = connection.execute(
        sa.select(tiles.c.level, tiles.c.idx, tiles.c.hashes).where(
            sa.func.length(tiles.c.hashes) == TILE_WIDTH * 32
        )
    ).all()
    for level, idx, hashes in full:
        connection.execute(
            sa.update(tiles)
            .where(tiles.c.level == level, tiles.c.idx == idx)
            .values(upper=upper_levels(bytes(hashes))[0])
        )


def downgrade() -> None:
    with op.batch_alter_table("log_tiles") as batch:
        batch.drop_column("upper")
