"""OpenID4VP transactions of the verifier (issue 16).

``vp_transactions``: one authorization request a verifier made — its client identifier,
one-time ``nonce`` and ``state``, the SHA-256 of the canonical request, the DCQL query, the
policy it was made under, the response mode with the wrapped ephemeral key of
``direct_post.jwt``, the expiry, when the nonce was consumed, and the decision with its
precise reason, the SHA-256 of the one-time response code and the wrapped disclosed claims
until the verifier reads them.

``ix_credentials_status``: the verifier's privacy tombstone (pipeline step 4) looks a
credential of this platform up by its status-list entry.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "vp_transactions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=512), nullable=False),
        sa.Column("client_id_prefix", sa.String(length=32), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("dcql", sa.Text(), nullable=False),
        sa.Column("policy_id", sa.String(length=40), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("zk_predicates", sa.Text(), nullable=False),
        sa.Column("response_mode", sa.String(length=16), nullable=False),
        sa.Column("redirect_uri", sa.String(length=1024), nullable=True),
        sa.Column("enc_public", sa.Text(), nullable=True),
        sa.Column("enc_key", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("consumed_at", _TS, nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("decision", sa.String(length=8), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("response_code_hash", sa.String(length=64), nullable=True),
        sa.Column("claims", sa.Text(), nullable=True),
        sa.Column("claims_read_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vp_transactions")),
        sa.UniqueConstraint("nonce", name=op.f("uq_vp_transactions_nonce")),
        sa.UniqueConstraint("state", name=op.f("uq_vp_transactions_state")),
        sa.UniqueConstraint(
            "response_code_hash", name=op.f("uq_vp_transactions_response_code_hash")
        ),
    )
    op.create_index(op.f("ix_vp_transactions_owner"), "vp_transactions", ["owner"])
    # Step 4 (privacy tombstone) finds a credential of this platform by its status entry.
    op.create_index("ix_credentials_status", "credentials", ["status_list_id", "status_index"])


def downgrade() -> None:
    op.drop_index("ix_credentials_status", table_name="credentials")
    op.drop_index(op.f("ix_vp_transactions_owner"), table_name="vp_transactions")
    op.drop_table("vp_transactions")
