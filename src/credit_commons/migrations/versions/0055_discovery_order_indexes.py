"""Discovery read in opt-in order: ``(credit_tier, opted_in_at)`` for one tier, replacing
``(credit_tier)``, which is its prefix, and ``(opted_in_at)`` for every tier.

``consent.retrieval.discover`` answers a lender the first opted-in borrowers (of a tier, or
of all) in opt-in order, 50 at a time.  With only ``(credit_tier)`` SQLite read every
borrower of the tier and sorted them (a temporary B-tree), and with no index on the order
every opted-in borrower, for each page (bench/web.py: ``/lender/discovery?tier=B``, 40,000
opted-in borrowers at 1,000,000 consents).  With these the first rows are read in order and
the query stops at its limit.

Revision ID: 0055
Revises: 0054
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0055"
down_revision = "0054"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_discovery_profiles_tier_opted_in",
        "discovery_profiles",
        ["credit_tier", "opted_in_at"],
    )
    op.create_index("ix_discovery_profiles_opted_in", "discovery_profiles", ["opted_in_at"])
    op.drop_index("ix_discovery_profiles_credit_tier", table_name="discovery_profiles")


def downgrade() -> None:
    op.create_index("ix_discovery_profiles_credit_tier", "discovery_profiles", ["credit_tier"])
    op.drop_index("ix_discovery_profiles_opted_in", table_name="discovery_profiles")
    op.drop_index("ix_discovery_profiles_tier_opted_in", table_name="discovery_profiles")
