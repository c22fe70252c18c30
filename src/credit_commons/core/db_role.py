"""The database role the service runs as (issue 21 §5; seed 002 §15's strict DB role).

The schema belongs to an owner role that only ``commons db upgrade`` uses
(``COMMONS_MIGRATION_DATABASE_URL``); the service connects as a role that can read and write
rows but cannot change the schema, and cannot take back what the log has recorded:

* no superuser, no ownership of the schema or any of its tables (an owner can grant itself
  anything, and ``ALTER``/``DROP`` needs no grant);
* no ``CREATE`` on the schema or the database;
* on the append-only tables (:data:`APPEND_ONLY`: the events, the log's entries and its
  checkpoints) only ``SELECT`` and ``INSERT``; on the cosignatures no ``DELETE``; no
  ``TRUNCATE`` anywhere; the migration table read-only;
* ``SELECT`` and ``INSERT`` on every other table (without them it could not serve).

:func:`grant_statements` are the grants that make a role so (``commons db grant-service-role``,
run as the owner after each upgrade); :func:`role_violations` reads what the connected role
may actually do (``has_table_privilege`` and friends, which count privileges held through
other roles and ``PUBLIC``), and ``startup_checks`` refuses to start on any violation in
production, or anywhere with ``COMMONS_STRICT_DB_ROLE=true``.

SQLite has no roles: whoever can write the file can do anything to it.  Its posture is the
file's permissions, so the check there refuses a database file, or a directory holding it,
that the group or others may write.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from credit_commons.core.errors import ConfigurationError
from credit_commons.core.settings import Violation

__all__ = [
    "APPEND_ONLY",
    "NO_DELETE",
    "check_db_role",
    "grant_statements",
    "role_violations",
]

APPEND_ONLY = ("events", "log_entries", "log_checkpoints")
"""Tables the service may only read and append to: what the transparency log recorded."""
NO_DELETE = ("log_cosignatures",)
"""Tables whose rows the service may replace (a witness's newer cosignature line) but not
delete."""
_MIGRATIONS = "alembic_version"
_ROLE = re.compile(r"^[a-z_][a-z0-9_$]{0,62}$")
_HINT = "run `commons db grant-service-role ROLE` as the schema owner (docs/operations.md)"
_OWNER = (
    "connect as a role that is not the owner's nor a member of it (REVOKE owner FROM role), "
    "then run `commons db grant-service-role ROLE` as the owner (docs/operations.md)"
)


def _quoted(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote_identifier(name)


def grant_statements(connection: Connection, role: str) -> list[str]:
    """The statements, run as the schema's owner on PostgreSQL, that give ``role`` exactly
    the service's privileges on the connection's current schema (and revoke the rest).

    Raises :class:`ConfigurationError` for a role name that is not a plain lower-case SQL
    identifier, or on a database that is not PostgreSQL.
    """
    if connection.dialect.name != "postgresql":
        raise ConfigurationError("database roles are PostgreSQL's; SQLite's posture is its file")
    if not _ROLE.fullmatch(role):
        raise ConfigurationError(f"{role!r} is not a plain SQL role name", hint="e.g. commons_app")
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    tables = connection.execute(
        text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    ).scalars()
    r, s = _quoted(connection, role), _quoted(connection, schema)
    present = set(tables)
    statements = [
        f"REVOKE ALL ON SCHEMA {s} FROM {r}",
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
    ]
    for table in sorted(present & {*APPEND_ONLY, _MIGRATIONS}):
        privileges = "INSERT, UPDATE, DELETE" if table == _MIGRATIONS else "UPDATE, DELETE"
        statements.append(f"REVOKE {privileges} ON {s}.{_quoted(connection, table)} FROM {r}")
    for table in sorted(present & set(NO_DELETE)):
        statements.append(f"REVOKE DELETE ON {s}.{_quoted(connection, table)} FROM {r}")
    return statements


def _postgres_violations(connection: Connection) -> list[Violation]:
    found: list[Violation] = []
    role, superuser, *attributes = connection.execute(
        text(
            "SELECT current_user, rolsuper, rolcreaterole, rolbypassrls, rolreplication"
            " FROM pg_roles WHERE rolname = current_user"
        )
    ).one()
    if superuser:
        found.append(Violation(f"the database role {role} is a superuser", _HINT))
    # CREATEROLE can grant itself the owner's role (PostgreSQL 15); BYPASSRLS and
    # REPLICATION read past what the grants allow.
    for name, held in zip(("CREATEROLE", "BYPASSRLS", "REPLICATION"), attributes, strict=True):
        if held:
            found.append(
                Violation(f"the database role {role} has {name}", f"ALTER ROLE {role} NO{name}")
            )
    # 'MEMBER', not 'USAGE': a NOINHERIT member of the owner's role has none of its
    # privileges until it runs SET ROLE, which it may.
    schema_owned, schema_create, database_create = connection.execute(
        text(
            "SELECT pg_has_role(current_user, nspowner, 'MEMBER'),"
            " has_schema_privilege(current_schema(), 'CREATE'),"
            " has_database_privilege(current_database(), 'CREATE')"
            " FROM pg_namespace WHERE nspname = current_schema()"
        )
    ).one()
    if schema_owned:
        found.append(Violation(f"the database role {role} may become the schema's owner", _OWNER))
    if schema_create or database_create:
        where = "schema" if schema_create else "database"
        found.append(Violation(f"the database role {role} may CREATE in the {where}", _HINT))
    rows = connection.execute(
        text(
            "SELECT tablename, pg_has_role(current_user, tableowner, 'MEMBER'),"
            " has_table_privilege(quote_ident(schemaname) || '.' || quote_ident(tablename),"
            "   'SELECT'),"
            " has_table_privilege(quote_ident(schemaname) || '.' || quote_ident(tablename),"
            "   'INSERT'),"
            " has_table_privilege(quote_ident(schemaname) || '.' || quote_ident(tablename),"
            "   'UPDATE'),"
            " has_table_privilege(quote_ident(schemaname) || '.' || quote_ident(tablename),"
            "   'DELETE'),"
            " has_table_privilege(quote_ident(schemaname) || '.' || quote_ident(tablename),"
            "   'TRUNCATE')"
            " FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        )
    ).all()
    for table, owned, select, insert, update, delete, truncate in rows:
        held = {"UPDATE": update, "DELETE": delete, "TRUNCATE": truncate}
        if table == _MIGRATIONS:
            held["INSERT"] = insert
            forbidden = ["INSERT", "UPDATE", "DELETE", "TRUNCATE"]
        elif table in APPEND_ONLY:
            forbidden = ["UPDATE", "DELETE", "TRUNCATE"]
        elif table in NO_DELETE:
            forbidden = ["DELETE", "TRUNCATE"]
        else:
            forbidden = ["TRUNCATE"]
        excess = [name for name in forbidden if held[name]]
        if owned:
            found.append(
                Violation(
                    f"the database role {role} may become the owner of the table {table}", _OWNER
                )
            )
        elif excess:
            found.append(
                Violation(f"the database role {role} may {'/'.join(excess)} {table}", _HINT)
            )
        if not select or (table != _MIGRATIONS and not insert):
            found.append(
                Violation(f"the database role {role} may not read and insert into {table}", _HINT)
            )
    return found


def _sqlite_violations(engine: Engine) -> list[Violation]:
    database = engine.url.database
    if not database or database == ":memory:":
        return []
    found: list[Violation] = []
    path = Path(database)
    for each in (path, path.parent):
        try:
            mode = each.stat().st_mode
        except OSError:
            continue
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            found.append(
                Violation(
                    f"the SQLite {'file' if each == path else 'directory'} {each} is writable "
                    "by its group or others",
                    f"chmod go-w {each} (SQLite's posture is its file's permissions)",
                )
            )
    return found


def role_violations(engine: Engine) -> list[Violation]:
    """What the role ``engine`` connects as may do beyond the service's privileges (or
    lacks of them), on PostgreSQL; on SQLite, a file or directory others may write."""
    if engine.dialect.name == "sqlite":
        return _sqlite_violations(engine)
    with engine.connect() as connection:
        return _postgres_violations(connection)


def check_db_role(engine: Engine) -> None:
    """Refuse a database role with more (or fewer) than the service's privileges.

    Raises :class:`ConfigurationError` naming every violation.
    """
    found = role_violations(engine)
    if not found:
        return
    raise ConfigurationError(
        "the service's database role is not the strict one: "
        + "; ".join(violation.problem for violation in found),
        hint=found[0].hint,
        extra={"violations": [{"problem": v.problem, "hint": v.hint} for v in found]},
    )
