"""Reputation events (issue 19): accepted vouches and reports by CID, their blobs, and the
members (the credentials DIDs registered with).  (sender, nonce) is unique forever (replay);
(sender, ctx, epoch, type) indexed for the per-epoch budgets.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reputation_events",
        sa.Column("cid", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("sender", sa.String(length=128), nullable=False),
        sa.Column("recipient", sa.String(length=128), nullable=False),
        sa.Column("ctx", sa.String(length=98), nullable=False),
        sa.Column("epoch", sa.String(length=7), nullable=False),
        sa.Column("nonce", sa.String(length=16), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("cid", name=op.f("pk_reputation_events")),
        sa.UniqueConstraint("sender", "nonce", name=op.f("uq_reputation_events_sender")),
    )
    op.create_index(
        "ix_reputation_events_budget", "reputation_events", ["sender", "ctx", "epoch", "type"]
    )
    op.create_index("ix_reputation_events_recipient", "reputation_events", ["recipient", "ctx"])
    op.create_table(
        "reputation_blobs",
        sa.Column("cid", sa.String(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("cid", name=op.f("pk_reputation_blobs")),
    )
    op.create_table(
        "reputation_members",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("did", sa.String(length=128), nullable=False),
        sa.Column("kyc", sa.Boolean(), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("vct", sa.String(length=512), nullable=False),
        sa.Column("credential_sha256", sa.String(length=64), nullable=False),
        sa.Column("status_ref", sa.String(length=1024), nullable=True),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reputation_members")),
        sa.UniqueConstraint("did", "credential_sha256", name=op.f("uq_reputation_members_did")),
    )
    op.create_index(op.f("ix_reputation_members_did"), "reputation_members", ["did"])


def downgrade() -> None:
    op.drop_index(op.f("ix_reputation_members_did"), table_name="reputation_members")
    op.drop_table("reputation_members")
    op.drop_table("reputation_blobs")
    op.drop_index("ix_reputation_events_recipient", table_name="reputation_events")
    op.drop_index("ix_reputation_events_budget", table_name="reputation_events")
    op.drop_table("reputation_events")
