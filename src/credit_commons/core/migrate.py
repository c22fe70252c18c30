"""Schema migrations through Alembic, driven programmatically (no alembic.ini needed).

The tables the migrations describe are gathered by :mod:`credit_commons.migrations.metadata`
(an edge, allowed to import every domain's ``models``), not here: ``core`` imports no domain."""

from __future__ import annotations

import functools

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from credit_commons.core.errors import UnavailableError

__all__ = ["current_revision", "head_revision", "upgrade"]


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
