"""``commons db …``: the database schema (migrations)."""

from __future__ import annotations

import typer

from credit_commons.cli.support import JsonOption, emit, group, runtime
from credit_commons.core.db import transaction
from credit_commons.core.migrate import current_revision, head_revision, upgrade
from credit_commons.privacy.pepper import check_peppers

__all__ = ["app"]

app = group("db", "Database schema.")


@app.command("upgrade")
def db_upgrade(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Apply every pending schema migration."""
    with runtime(ctx) as rt:
        revision = upgrade(rt.engine)
        backend = rt.engine.dialect.name
        with transaction(rt.sessions) as session:
            check_peppers(session, rt)
    emit(
        as_json,
        {"revision": revision, "database": backend},
        f"database ({backend}) at revision {revision}",
    )


@app.command("current")
def db_current(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the schema revision of the database and of this code."""
    with runtime(ctx) as rt:
        current = current_revision(rt.engine)
    head = head_revision()
    emit(
        as_json,
        {"current": current, "head": head, "up_to_date": current == head},
        f"database at {current}, code at {head}" + ("" if current == head else " (run upgrade)"),
    )
