"""The signed trust bundle, pinned bundles of other platforms, and verifier policies.

* ``trusted_issuers`` gains ``marks`` and ``types`` (JSON arrays; existing issuers keep no
  marks and may issue any type, ``["*"]``, as they could before) and ``anchor`` (the DER of
  an X.509 trust anchor, for entries of kind ``x509``);
* ``trust_bundle_versions``: each version of the bundle made from that list;
* ``trust_pins``: other platforms' bundles trusted by a pinned key, with the last accepted;
* ``verifier_policies`` and ``verifier_policy_floors``: each verifier's policy versions and
  the floor below which a request's policy version is a downgrade.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("trusted_issuers") as batch:
        batch.add_column(sa.Column("marks", sa.Text(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("types", sa.Text(), nullable=False, server_default='["*"]'))
        batch.add_column(sa.Column("anchor", sa.LargeBinary(), nullable=True))
    op.create_table(
        "trust_bundle_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("issuers", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_trust_bundle_versions")),
    )
    op.create_table(
        "trust_pins",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=512), nullable=False),
        sa.Column("key_jwk", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("fetched_at", _TS, nullable=True),
        sa.Column("pinned_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trust_pins")),
        sa.UniqueConstraint("url", name=op.f("uq_trust_pins_url")),
    )
    op.create_table(
        "verifier_policies",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("policy_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifier_policies")),
        sa.UniqueConstraint(
            "owner",
            "policy_id",
            "version",
            name=op.f("uq_verifier_policies_owner_policy_id_version"),
        ),
    )
    op.create_table(
        "verifier_policy_floors",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("policy_id", sa.String(length=64), nullable=False),
        sa.Column("floor", sa.Integer(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("owner", "policy_id", name=op.f("pk_verifier_policy_floors")),
    )


def downgrade() -> None:
    op.drop_table("verifier_policy_floors")
    op.drop_table("verifier_policies")
    op.drop_table("trust_pins")
    op.drop_table("trust_bundle_versions")
    with op.batch_alter_table("trusted_issuers") as batch:
        batch.drop_column("anchor")
        batch.drop_column("types")
        batch.drop_column("marks")
