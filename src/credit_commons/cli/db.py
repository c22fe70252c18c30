"""``commons db …``: the database schema (migrations)."""

from __future__ import annotations

import typer

from credit_commons.cli.support import JsonOption, emit, group, runtime
from credit_commons.core.db import transaction
from credit_commons.core.db_role import check_db_role, grant_statements, role_violations
from credit_commons.core.migrate import current_revision, head_revision, upgrade
from credit_commons.privacy.pepper import check_peppers

__all__ = ["app"]

app = group("db", "Database schema.")


@app.command("upgrade")
def db_upgrade(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Apply every pending schema migration (as COMMONS_MIGRATION_DATABASE_URL's role, the
    schema's owner, when set)."""
    with runtime(ctx, owner=True) as rt:
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


@app.command("grant-service-role")
def db_grant_service_role(
    ctx: typer.Context,
    role: str = typer.Argument(help="the existing PostgreSQL role the service connects as"),
    as_json: JsonOption = False,
) -> None:
    """Give ROLE exactly the service's privileges on the schema (run as the owner, after
    each upgrade): rows read and written, no schema change, the log append-only."""
    with runtime(ctx, owner=True) as rt, rt.engine.begin() as connection:
        statements = grant_statements(connection, role)
        for statement in statements:
            connection.exec_driver_sql(statement)
    emit(as_json, {"role": role, "statements": statements}, ";\n".join(statements) + ";")


@app.command("check-role")
def db_check_role(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check the service's database role as start-up does in production (exit 3 when it
    may change the schema or delete log rows)."""
    with runtime(ctx) as rt:
        found = role_violations(rt.engine)
        if found and not as_json:
            check_db_role(rt.engine)
    emit(
        as_json,
        {"strict": not found, "violations": [v.problem for v in found]},
        "the database role is the strict one",
    )
