"""The delegations to one identity by id, ``(delegatee_token, id)``: the field agent's list
of borrowers on ``/agent`` is read a page at a time, keyset by delegation id, and stops at
its limit instead of loading every delegation of the agent (web/agent.py).

``(delegatee_token, delegator_token)`` stays: it answers "may this agent act for this
borrower" (``identity.auth.has_delegation``).

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_delegations_delegatee_id", "delegations", ["delegatee_token", "id"])


def downgrade() -> None:
    op.drop_index("ix_delegations_delegatee_id", table_name="delegations")
