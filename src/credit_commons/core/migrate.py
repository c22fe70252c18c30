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
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from credit_commons.core.errors import UnavailableError

__all__ = [
    "NotMigrated",
    "SchemaGate",
    "current_revision",
    "head_revision",
    "not_migrated",
    "schema_current",
    "upgrade",
]

RECHECK_SECONDS = 2.0
"""How long a :class:`SchemaGate` trusts its last reading of an unmigrated database."""


class NotMigrated(UnavailableError):
    """The database's schema is not this version's head: the service answers 503 until
    ``commons db upgrade`` has run (``/readyz`` and every API route)."""

    code = "service.not_migrated"
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
    config = _config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except OperationalError as e:
        raise UnavailableError("the database is not reachable") from e
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None when it has never been migrated).

    Raises :class:`UnavailableError` when the database cannot be reached.
    """
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as e:
        raise UnavailableError("the database is not reachable") from e


@functools.cache
def head_revision() -> str | None:
    """The newest revision shipped with this version of the code.

    Read once per process: the migrations are part of the code, so they cannot change while it
    runs, and loading them (every migration module, compiled) cost each start-up check and each
    ``/readyz`` answer tens of milliseconds."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def schema_current(engine: Engine) -> bool:
    """Whether the database is at this version's head revision (what ``/readyz`` asks).

    Raises :class:`UnavailableError` when the database cannot be reached.
    """
    return current_revision(engine) == head_revision()


class SchemaGate:
    """Whether the database is migrated, asked by every request and the log worker's
    passes without a query each: once the schema is current the answer is kept for the
    life of the process (migrations only move forward under a running server); while it
    is not, the database is read again at most every ``recheck`` seconds.

    ``on_migrated`` runs once, the first time the schema is found current, before the
    gate opens (the start-up checks that need the tables); if it raises, the gate stays
    shut and the next look after ``recheck`` seconds runs it again.
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
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        """The schema was found current (no query)."""
        return self._open

    def due(self) -> bool:
        """Whether :meth:`migrated` would read the database now (no query)."""
        checked = self._checked_at
        return not self._open and (checked is None or self._monotonic() - checked >= self._recheck)

    def migrated(self) -> bool:
        """Whether the schema is current: the kept answer, or read now when it is due.

        Raises :class:`UnavailableError` when the database cannot be reached, and what
        ``on_migrated`` raises.
        """
        if self._open:
            return True
        with self._lock:
            if self._open or not self.due():
                return self._open
            self._checked_at = self._monotonic()
            if not schema_current(self._engine):
                return False
            if self._on_migrated is not None:
                self._on_migrated()
            self._open = True
            return True
