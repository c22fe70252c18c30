"""Identifier binding: self-asserted identifiers no longer block anybody; onboarding
authorities bind them (issue 12 item 5).

``identity_identifiers`` gets a key of (identity, pseudonym), a ``status`` (``unverified`` or
``bound``), the attesting authority, an evidence digest and the binding time; a partial unique
index keeps a *bound* identifier with one identity.  Every existing link was self-asserted
(nobody attested it), so it becomes ``unverified``.  ``onboarding_authorities`` lists the banks
and issuer desks that may bind.

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_BOUND = sa.text("status = 'bound'")


def upgrade() -> None:
    op.create_table(
        "identity_identifiers_v2",
        sa.Column("identity_token", sa.String(40), nullable=False),
        sa.Column("pseudonym", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("authority_id", sa.String(40)),
        sa.Column("evidence_digest", sa.String(64)),
        sa.Column("bound_at", _TS),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_token"],
            ["identities.token"],
            name="fk_identity_identifiers_v2_identity_token",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("identity_token", "pseudonym", name="pk_identity_identifiers_v2"),
    )
    op.execute(
        "INSERT INTO identity_identifiers_v2 (identity_token, pseudonym, kind, status, created_at)"
        " SELECT identity_token, pseudonym, kind, 'unverified', created_at"
        " FROM identity_identifiers"
    )
    op.drop_index("ix_identity_identifiers_token", table_name="identity_identifiers")
    op.drop_table("identity_identifiers")
    op.rename_table("identity_identifiers_v2", "identity_identifiers")
    op.create_index("ix_identity_identifiers_pseudonym", "identity_identifiers", ["pseudonym"])
    op.create_index(
        "uq_identity_identifiers_bound",
        "identity_identifiers",
        ["pseudonym"],
        unique=True,
        sqlite_where=_BOUND,
        postgresql_where=_BOUND,
    )
    op.create_table(
        "onboarding_authorities",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("principal", sa.String(64), nullable=False, unique=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    # Bound identifiers were unique; unverified ones may repeat, so only one link per
    # pseudonym survives a downgrade (a bound one when there is one).
    op.drop_table("onboarding_authorities")
    op.create_table(
        "identity_identifiers_v1",
        sa.Column("pseudonym", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("identity_token", sa.String(40), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_token"],
            ["identities.token"],
            name="fk_identity_identifiers_identity_token_identities",
            ondelete="CASCADE",
        ),
    )
    op.execute(
        "INSERT INTO identity_identifiers_v1 (pseudonym, kind, identity_token, created_at)"
        " SELECT pseudonym, MIN(kind), MIN(identity_token), MIN(created_at)"
        " FROM identity_identifiers WHERE status = 'bound' GROUP BY pseudonym"
    )
    op.execute(
        "INSERT INTO identity_identifiers_v1 (pseudonym, kind, identity_token, created_at)"
        " SELECT pseudonym, MIN(kind), MIN(identity_token), MIN(created_at)"
        " FROM identity_identifiers WHERE pseudonym NOT IN"
        " (SELECT pseudonym FROM identity_identifiers_v1) GROUP BY pseudonym"
    )
    op.drop_table("identity_identifiers")
    op.rename_table("identity_identifiers_v1", "identity_identifiers")
    op.create_index("ix_identity_identifiers_token", "identity_identifiers", ["identity_token"])
