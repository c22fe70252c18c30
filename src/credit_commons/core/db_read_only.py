"""An engine whose connections refuse every write at the database itself — what the CLI
gives the reads it lets through while the instance is held in backup-restore mode
(cli/support.py, cli/while_held.py), so that "this command writes nothing" is enforced by
SQLite and PostgreSQL rather than by reading each command's code.

SQLite: ``PRAGMA query_only`` on every connection, and its transactions begin ``DEFERRED``
(``core/db.py``'s :data:`~credit_commons.core.db.READ_ONLY`: ``BEGIN IMMEDIATE`` is itself
refused as a write).  PostgreSQL: the session's ``default_transaction_read_only``, so
every transaction, autocommit ones included, is ``READ ONLY``, and each transaction begun
``READ ONLY`` as well (SQLAlchemy's ``postgresql_readonly``), so that no pooled
connection's reset turns it back.  A write then fails with the database's own error, which
:func:`is_write_refusal` recognises.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from credit_commons.core.db import READ_ONLY

__all__ = ["is_write_refusal", "refuse_writes"]

_PG_READ_ONLY_TRANSACTION = "25006"  # read_only_sql_transaction


def refuse_writes(engine: Engine) -> None:
    """From now on every connection of ``engine`` refuses writes (connections already pooled
    are closed, so none escapes)."""
    postgres = engine.dialect.name == "postgresql"

    def read_only(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if postgres:
                cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            else:
                cursor.execute("PRAGMA query_only = ON")
        finally:
            cursor.close()
        if postgres and not getattr(dbapi_connection, "autocommit", False):
            dbapi_connection.commit()  # the SET ran in a transaction of its own

    event.listen(engine, "connect", read_only)
    if postgres:
        # Also per transaction: a connection that ran one with postgresql_readonly
        # (core/db.py's snapshot) is reset to READ WRITE when pooled, and psycopg then begins
        # every later transaction READ WRITE, over the session's default.
        engine.update_execution_options(postgresql_readonly=True)
    else:
        engine.update_execution_options(**{READ_ONLY: True})
    engine.dispose()


def is_write_refusal(error: BaseException) -> bool:
    """Whether ``error`` is a database refusing a write on a connection of
    :func:`refuse_writes`."""
    if not isinstance(error, DBAPIError):
        return False
    if getattr(error.orig, "sqlstate", None) == _PG_READ_ONLY_TRANSACTION:
        return True
    return "attempt to write a readonly database" in str(error.orig)
