"""A subject's events in id order: ``(subject, id)`` on ``events``, replacing ``(subject)``,
which is its prefix.

``consent.history.access_history`` (the borrower's "who saw what", console and API) reads
the newest ``access.*`` events of one subject, 200 at a time, and the identity export every
event of one subject in id order.  With only ``(subject)`` SQLite read all of the subject's
events (about 900 for a borrower with 300 consents, a third of them accesses) and sorted
them (a temporary B-tree) for each page; with this it reads them newest first and stops at
its limit.  The access monitor's ``subject IN (...)`` reads use the prefix as before.

Revision ID: 0056
Revises: 0053
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0056"
down_revision = "0053"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_subject_id", "events", ["subject", "id"])
    op.drop_index("ix_events_subject", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_subject", "events", ["subject"])
    op.drop_index("ix_events_subject_id", table_name="events")
