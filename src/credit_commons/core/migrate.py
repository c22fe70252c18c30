"""Schema migrations through Alembic, driven programmatically (no alembic.ini needed).

The tables the migrations describe are gathered by :mod:`credit_commons.migrations.metadata`
(an edge, allowed to import every domain's ``models``), not here: ``core`` imports no domain."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from credit_commons.core.errors import CommonsError, UnavailableError

__all__ = [
    "NotGranted",
    "NotMigrated",
    "SchemaAhead",
    "SchemaGate",
    "current_revision",
    "head_revision",
    "not_migrated",
    "schema_current",
    "schema_refusal",
    "upgrade",
    "upgrade_on",
]

INSUFFICIENT_PRIVILEGE = "42501"
"""PostgreSQL's SQLSTATE for "permission denied" (Appendix A, class 42)."""

RECHECK_SECONDS = 2.0
"""How long a :class:`SchemaGate` trusts its last reading of an unmigrated database."""


class NotMigrated(UnavailableError):
    """The database's schema is not this version's head: the service answers 503 until
    ``commons db upgrade`` has run (``/readyz`` and every API route)."""

    code = "service.not_migrated"
    retry_after = 5


class SchemaAhead(UnavailableError):
    """The database was migrated by a newer version of the code (a revision this version
    does not ship): ``commons db upgrade`` cannot help; the newer version must be deployed."""

    code = "service.schema_ahead"
    retry_after = 30


class NotGranted(UnavailableError):
    """The service's database role may not read the schema's revision: between
    ``commons db upgrade`` (run as the owner) and ``commons db grant-service-role``, or
    the grant was never run (docs/operations.md)."""

    code = "service.not_granted"
    retry_after = 5


def not_migrated() -> NotMigrated:
    """The refusal served while the database is not migrated."""
    # The command in the detail itself: problem+json carries no hint.
    return NotMigrated(
        "the database schema is not at this version's head; run `commons db upgrade`"
    )


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", "credit_commons:migrations")
    return config


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply migrations up to ``revision`` in one transaction; returns the new revision.

    Raises :class:`UnavailableError` when the database cannot be reached.
    """
    try:
        with engine.begin() as connection:
            upgrade_on(connection, revision)
    except OperationalError as e:
        raise UnavailableError("the database is not reachable") from e
    return current_revision(engine)


def upgrade_on(connection: Connection, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` in ``connection``'s transaction (the caller
    commits: a restore loads its rows and writes its hold in the same one)."""
    config = _config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None when it has never been migrated).

    Raises :class:`UnavailableError` when the database cannot be reached,
    :class:`NotGranted` when the role may not read ``alembic_version``, and
    :class:`NotMigrated` when the revision cannot be read otherwise (a damaged table).
    """
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as e:
        raise UnavailableError("the database is not reachable") from e
    except ProgrammingError as e:
        if getattr(e.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE:
            raise NotGranted(
                "the service's database role may not read the schema (permission denied); "
                "run `commons db grant-service-role` with the same settings"
            ) from e
        raise NotMigrated(
            "the database's schema revision cannot be read; run `commons db upgrade`"
        ) from e


@functools.cache
def _scripts() -> ScriptDirectory:
    # Loaded once per process: the migrations are part of the code, so they cannot change
    # while it runs, and loading them (every migration module, compiled) cost each start-up
    # check and each ``/readyz`` answer tens of milliseconds.
    return ScriptDirectory.from_config(_config())


@functools.cache
def head_revision() -> str | None:
    """The newest revision shipped with this version of the code (read once per process)."""
    return _scripts().get_current_head()


@functools.cache
def _shipped_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


def schema_refusal(engine: Engine) -> NotMigrated | SchemaAhead | None:
    """Why the database's schema is not this version's head (None when it is): not
    migrated yet (or to an older revision), or migrated by a newer version.

    Raises :class:`UnavailableError` when the database cannot be reached, and
    :class:`NotGranted` when the role may not read the revision.
    """
    revision = current_revision(engine)
    if revision == head_revision():
        return None
    if revision is not None and revision not in _shipped_revisions():
        return SchemaAhead(
            f"this database was migrated by a newer version (revision {revision}); "
            "deploy that version"
        )
    return not_migrated()


def schema_current(engine: Engine) -> bool:
    """Whether the database is at this version's head revision.

    Raises what :func:`schema_refusal` raises.
    """
    return schema_refusal(engine) is None


class SchemaGate:
    """Whether the database is migrated, asked by every request and the log worker's
    passes without a query each: once the schema is current the answer is kept for the
    life of the process (migrations only move forward under a running server); while it
    is not, the database is read again at most every ``recheck`` seconds.

    ``on_migrated`` runs once, the first time the schema is found current, before the
    gate opens (the start-up checks that need the tables); if it raises, the gate stays
    shut and the next look after ``recheck`` seconds runs it again.  While shut,
    :meth:`refusal` is the reason of the last look, served until the next.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        on_migrated: Callable[[], object] | None = None,
        recheck: float = RECHECK_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._on_migrated = on_migrated
        self._recheck = recheck
        self._monotonic = monotonic
        self._open = False
        self._checked_at: float | None = None
        self._refusal: CommonsError | None = None
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        """The schema was found current (no query)."""
        return self._open

    def due(self) -> bool:
        """Whether :meth:`migrated` would read the database now (no query)."""
        checked = self._checked_at
        return not self._open and (checked is None or self._monotonic() - checked >= self._recheck)

    def refusal(self) -> CommonsError:
        """Why the gate is shut, as its last look found (no query): not migrated, migrated
        by a newer version, not granted, unreachable, or what ``on_migrated`` raised."""
        return self._refusal or not_migrated()

    def migrated(self) -> bool:
        """Whether the schema is current: the kept answer, or read now when it is due.

        Raises what :func:`schema_refusal` raises, and what ``on_migrated`` raises.
        """
        if self._open:
            return True
        with self._lock:
            if self._open or not self.due():
                return self._open
            self._checked_at = self._monotonic()
            try:
                refusal = schema_refusal(self._engine)
                if refusal is None and self._on_migrated is not None:
                    self._on_migrated()
            except CommonsError as e:
                # Kept, so the requests until the next look get this reason, not a
                # "run `commons db upgrade`" that is no longer true.
                self._refusal = e
                raise
            self._refusal = refusal
            if refusal is not None:
                return False
            self._open = True
            return True
