"""Schema migrations through Alembic, driven programmatically (no alembic.ini needed)."""

from __future__ import annotations

import importlib

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from credit_commons.core.db import Base
from credit_commons.core.errors import UnavailableError

__all__ = ["MODEL_MODULES", "current_revision", "head_revision", "target_metadata", "upgrade"]


# Every domain's table module; each new domain adds its own here.
MODEL_MODULES = (
    "credit_commons.core.facts",
    "credit_commons.events.models",
    "credit_commons.keys.models",
    "credit_commons.ledger.models",
    "credit_commons.vault.models",
    "credit_commons.identity.models",
    "credit_commons.privacy.models",
    "credit_commons.issuer.models",
    "credit_commons.lenders.models",
    "credit_commons.verifier.models",
    "credit_commons.consent.models",
)


def target_metadata() -> MetaData:
    """The metadata of every table, with every domain's models imported."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return Base.metadata


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


def head_revision() -> str | None:
    """The newest revision shipped with this version of the code."""
    return ScriptDirectory.from_config(_config()).get_current_head()
