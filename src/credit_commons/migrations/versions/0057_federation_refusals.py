"""Federation: the streams the publisher refuses to publish to because they hold another
platform's messages (two platforms on one NATS account), so ``/metrics`` shows the refusal
whichever process runs the publisher; and ``committee_signatures.published_at``, when the
publisher's cosigned note of each size was acknowledged (a flag per row: a partial for an
older size can complete it after a newer one was published, so a cursor over sizes would
skip it).  Sizes at or below the ``cosigned`` cursor of an earlier build of this revision
are marked published and that cursor removed.

Revision ID: 0057
Revises: 0056
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0057"
down_revision = "0056"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_refusals",
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("other", sa.String(length=256), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream", name=op.f("pk_federation_refusals")),
    )
    with op.batch_alter_table("committee_signatures") as batch:
        batch.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_committee_signatures_published",
        "committee_signatures",
        ["published_at", "size"],
    )
    op.execute(
        "UPDATE committee_signatures SET published_at = created_at WHERE size <= "
        "(SELECT position FROM federation_cursors WHERE name = 'cosigned')"
    )
    op.execute("DELETE FROM federation_cursors WHERE name = 'cosigned'")


def downgrade() -> None:
    op.drop_index("ix_committee_signatures_published", table_name="committee_signatures")
    with op.batch_alter_table("committee_signatures") as batch:
        batch.drop_column("published_at")
    op.drop_table("federation_refusals")
