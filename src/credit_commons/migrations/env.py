"""Alembic environment: runs on the connection handed in by :mod:`credit_commons.core.migrate`."""

from __future__ import annotations

from alembic import context

from credit_commons.migrations.metadata import target_metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable through a hand-made alembic.ini
    raise RuntimeError("run migrations with `commons db upgrade`")

context.configure(
    connection=connection,
    target_metadata=target_metadata(),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
