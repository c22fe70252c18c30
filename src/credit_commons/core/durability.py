"""What an acknowledged commit survives: the databases' durability settings, checked at
start-up.

A consent decision, a revocation, an erasure and the log entry that records it are promises
to a borrower: once the API has answered, a crash of the machine or a power loss must not
take them back.  The platform therefore needs every commit on stable storage before it
returns (docs/configuration.md, "Durability: what a power loss can lose"):

* SQLite runs in WAL mode with ``synchronous=FULL`` (:data:`SQLITE_SYNCHRONOUS`, set on
  every connection by ``core/db.py``): the write-ahead log is synced at each commit.  With
  ``NORMAL`` it is synced only at checkpoints, and a power loss can roll back the commits
  since the last one (SQLite, "PRAGMA synchronous").
* PostgreSQL must keep ``synchronous_commit`` on (``on``, ``local``, ``remote_write`` or
  ``remote_apply``: each waits for the local WAL flush) and ``fsync`` on.  With
  ``synchronous_commit=off`` a crash loses the commits of up to three ``wal_writer_delay``
  (PostgreSQL 15 §30.4); with ``fsync=off`` a crash can corrupt the cluster (§20.5.1).

:func:`durability_violations` reads what a connection of the engine actually runs with (a
role, database or URL setting included); ``startup_checks`` warns in development and
production refuses to start.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from credit_commons.core.settings import Violation, refuse

__all__ = ["SQLITE_SYNCHRONOUS", "check_durability", "durability_violations"]

SQLITE_SYNCHRONOUS = "FULL"
"""The ``PRAGMA synchronous`` of every SQLite connection (2 when read back)."""

# SQLite, "PRAGMA synchronous": 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
_SQLITE_FULL = 2
_HINT_DOCS = "see docs/configuration.md#durability-what-a-power-loss-can-lose"


def durability_violations(engine: Engine) -> list[Violation]:
    """The durability settings of ``engine``'s database under which an acknowledged commit
    can be lost by a crash or a power loss, each with what to set instead; empty when
    there is none.  Reads them on a connection of the engine (one round trip each)."""
    found: list[Violation] = []
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            level = connection.execute(text("PRAGMA synchronous")).scalar_one()
            if int(level) < _SQLITE_FULL:
                found.append(
                    Violation(
                        f"SQLite runs with synchronous={level} (below FULL): a power loss "
                        "can lose acknowledged commits",
                        f"connections must set PRAGMA synchronous=FULL; {_HINT_DOCS}",
                    )
                )
        elif engine.dialect.name == "postgresql":
            commit = connection.execute(text("SHOW synchronous_commit")).scalar_one()
            if str(commit).lower() == "off":
                found.append(
                    Violation(
                        "PostgreSQL runs with synchronous_commit=off: a crash can lose "
                        "acknowledged consent decisions and log entries",
                        "set synchronous_commit to on (server, database, role and "
                        f"connection options); {_HINT_DOCS}",
                    )
                )
            fsync = connection.execute(text("SHOW fsync")).scalar_one()
            if str(fsync).lower() == "off":
                found.append(
                    Violation(
                        "PostgreSQL runs with fsync=off: a crash can lose or corrupt data",
                        f"set fsync = on in postgresql.conf; {_HINT_DOCS}",
                    )
                )
    return found


def check_durability(engine: Engine, *, production: bool) -> list[Violation]:
    """:func:`durability_violations`, refused in ``production``; otherwise returned for
    the caller to warn about.

    Raises :class:`~credit_commons.core.errors.ConfigurationError` naming every violation
    when ``production`` and there is one.
    """
    found = durability_violations(engine)
    if production:
        refuse(found)
    return found
