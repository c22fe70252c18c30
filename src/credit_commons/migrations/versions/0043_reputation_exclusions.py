"""Issue 19 remainder: DIDs the scorer leaves out, and suspension as a pause.

``reputation_exclusions`` holds one row per excluded DID (a tombstone the DID's key signed,
or a member whose identity was erased): why, when, and the ``reputation.excluded`` spine
event that records it.  ``reputation_members.suspended_at`` is set while a membership's
credential is suspended at its status reference and cleared when it is reinstated
(``revoked_at`` stays for revocations, which are final).  ``reputation_members.x5c`` keeps
the ``x5c`` chain (public certificates, JSON) of a credential whose issuer is trusted through
an X.509 anchor: its status list is verified under the chain's end-entity key.

Revision ID: 0043
Revises: 0050
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0043"
down_revision = "0050"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reputation_exclusions",
        sa.Column("did", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("excluded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("did", name=op.f("pk_reputation_exclusions")),
    )
    with op.batch_alter_table("reputation_members") as batch:
        batch.add_column(sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("x5c", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reputation_members") as batch:
        batch.drop_column("x5c")
        batch.drop_column("suspended_at")
    op.drop_table("reputation_exclusions")
