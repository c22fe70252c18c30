"""Reputation scores (issue 19 "Score bundles"): the cached score record of each DID and
context as of a signed checkpoint (record JCS bytes and hash, the checkpoint's size and
root, the rule set it was scored under, and the assembled bundle once asked for), the
scoring cursor (the checkpoint last scored, its day and the membership digest) and the
capability queue (one row per rule set, subject and reason: insert-or-ignore).

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0040"
down_revision = "0039"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reputation_scores",
        sa.Column("did", sa.String(length=128), nullable=False),
        sa.Column("ctx", sa.String(length=98), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_root", sa.LargeBinary(), nullable=False),
        sa.Column("rule_set_id", sa.String(length=64), nullable=False),
        sa.Column("rule_set_version", sa.Integer(), nullable=False),
        sa.Column("rule_set_hash", sa.String(length=64), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("tier", sa.String(length=64), nullable=True),
        sa.Column("bundle", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("did", "ctx", name=op.f("pk_reputation_scores")),
    )
    op.create_table(
        "reputation_score_cursor",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("rule_set_hash", sa.String(length=64), nullable=False),
        sa.Column("members_digest", sa.String(length=64), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reputation_score_cursor")),
    )
    op.create_table(
        "reputation_capability_queue",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("rule_set_id", sa.String(length=64), nullable=False),
        sa.Column("subject_did", sa.String(length=128), nullable=False),
        sa.Column("ctx", sa.String(length=98), nullable=False),
        sa.Column("tier", sa.String(length=64), nullable=False),
        sa.Column("reason_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("credential_ref", sa.String(length=1024), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reputation_capability_queue")),
        sa.UniqueConstraint(
            "rule_set_id",
            "subject_did",
            "reason_hash",
            name=op.f("uq_reputation_capability_queue_rule_set_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("reputation_capability_queue")
    op.drop_table("reputation_score_cursor")
    op.drop_table("reputation_scores")
