"""Issue 20's remaining gaps: the full node each checkpoint committee member is bound to
(``committee_member_nodes``: a partial needs that node's service token besides its BLS
signature), and the leaves a full node noted as the spine events it scores
(``node_spine_leaves``: read once from the platform's entry bundles, kept across restarts).

``node_spine_leaves`` starts empty, with nothing noted: a node upgraded from 0052 reads the
entries of its mirrored leaves once more at its first start (the backfill: the mirror keeps
leaf hashes, not the entries that say a leaf's type, so there is nothing to derive them
from here) and never again.  ``committee_member_nodes`` starts empty too: a committee
registered before has no member bound, and its partials are refused until the operator
binds each member to its node (``commons committee bind``); a binding names a registered
committee version (a foreign key to ``committee_configs``).  The downgrade removes the
notes' watermark (``node_pins`` ``spine_noted_below``) with the notes.

Revision ID: 0053
Revises: 0052
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0053"
down_revision = "0052"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "committee_member_nodes",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("member", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"],
            ["committee_configs.version"],
            name=op.f("fk_committee_member_nodes_version_committee_configs"),
        ),
        sa.PrimaryKeyConstraint("version", "member", name=op.f("pk_committee_member_nodes")),
    )
    op.create_table(
        "node_spine_leaves",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_node_spine_leaves")),
    )


def downgrade() -> None:
    # The watermark of the notes goes with them: left behind, it would claim leaves as
    # noted after an upgrade again, and the scorer would score without their inputs.
    op.execute(sa.text("DELETE FROM node_pins WHERE name = 'spine_noted_below'"))
    op.drop_table("node_spine_leaves")
    op.drop_table("committee_member_nodes")
