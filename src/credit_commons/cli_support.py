"""What every ``commons`` command group shares: the ``--json`` option, the settings the
root callback built, a runtime for one command, printing text or JSON, reading an input
file, and the translation of every failure into one of the project's errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from credit_commons.core.db import transaction
from credit_commons.core.errors import (
    CommonsError,
    ConfigurationError,
    ExitCode,
    UnavailableError,
    ValidationError,
)
from credit_commons.core.files import path_error
from credit_commons.core.settings import Settings
from credit_commons.issuer.identifiers import record_issuer_identifier
from credit_commons.runtime import Runtime

__all__ = [
    "DatabaseNotMigrated",
    "DatabaseUnavailable",
    "Interrupted",
    "JsonOption",
    "UsageError",
    "emit",
    "one_line",
    "read_text_file",
    "runtime",
    "settings",
    "table",
    "translate_error",
]


class Interrupted(CommonsError):
    """The command was interrupted (Ctrl-C, or a prompt's input ended)."""

    code = "cli.interrupted"
    title = "Interrupted"
    status = 499
    exit_code: ClassVar[int] = ExitCode.INTERRUPTED


class UsageError(CommonsError):
    """The command line itself is wrong: an unknown option, a missing argument."""

    code = "cli.usage"
    title = "Usage error"
    status = 400
    exit_code: ClassVar[int] = ExitCode.USAGE


class DatabaseUnavailable(UnavailableError):
    """The database cannot be reached, or failed the command's statement."""


class DatabaseNotMigrated(ConfigurationError):
    """The database has no schema (or an older one) for this version."""

    code = "database.not_migrated"
    title = "Database not migrated"


def one_line(error: CommonsError) -> str:
    """``code: detail``, and ``; hint: …`` when there is one, on a single line."""
    text = f"{error.code}: {error.detail}"
    if error.hint:
        text += f"; hint: {error.hint}"
    return " ".join(text.split("\n"))


def translate_error(error: BaseException) -> CommonsError:
    """The project's error for any failure that reached the CLI's entry point.

    Returns a :class:`CommonsError` as it is; an ``OSError`` as a ``file.*`` error
    (:func:`~credit_commons.core.files.path_error`); a database error as
    :class:`DatabaseNotMigrated` or :class:`DatabaseUnavailable`, never with the driver's
    message (it may contain the database URL); ``KeyboardInterrupt`` (and Typer's
    ``Abort`` of a prompt) as :class:`Interrupted`; anything else as a bare
    ``commons.error`` naming only its class.
    """
    if isinstance(error, CommonsError):
        return error
    # Typer raises Abort when a prompt is interrupted (Ctrl-C, or its input ended).
    if isinstance(error, KeyboardInterrupt | typer.Abort):
        return Interrupted("interrupted")
    if isinstance(error, OSError):
        return path_error(error)
    if isinstance(error, SQLAlchemyError):
        return _database_error(error)
    return CommonsError(
        f"unexpected {error.__class__.__name__}",
        hint="this is a bug in commons; please report it with the command you ran",
    )


def _no_schema(error: SQLAlchemyError) -> bool:
    # SQLite says "no such table"; PostgreSQL raises UndefinedTable (SQLSTATE 42P01).
    origin = error.orig if isinstance(error, DBAPIError) else None
    return "no such table" in str(origin) or getattr(origin, "sqlstate", None) == "42P01"


def _database_error(error: SQLAlchemyError) -> CommonsError:
    origin = error.orig if isinstance(error, DBAPIError) else None
    name = origin.__class__.__name__ if origin is not None else error.__class__.__name__
    if _no_schema(error):
        return DatabaseNotMigrated(
            "the database has no schema for this version", hint="run `commons db upgrade`"
        )
    return DatabaseUnavailable(
        f"database error ({name})",
        hint="check that COMMONS_DATABASE_URL names a running database this user may use",
    )


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of ``path`` (``-``: standard input), for an input named ``what``.

    Raises a ``file.*`` error (:func:`~credit_commons.core.files.path_error`) when it cannot
    be read, and :class:`ValidationError` when it is not UTF-8.
    """
    try:
        if str(path) == "-":
            return sys.stdin.read()
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise path_error(e, "read") from e
    except UnicodeDecodeError as e:
        raise ValidationError(f"{what} is not UTF-8 text") from e


JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def settings(ctx: typer.Context) -> Settings:
    """The settings the root callback read from the environment."""
    built: Settings = ctx.obj
    return built


@contextmanager
def runtime(ctx: typer.Context) -> Iterator[Runtime]:
    """A runtime for one command, closed afterwards.

    On a migrated database the public URL joins the issuer identifiers first, so what this
    command issues stays verifiable after a later change of public URL
    (``issuer/identifiers.py``).
    """
    built = Runtime.build(settings(ctx))
    try:
        try:
            with transaction(built.sessions) as session:
                record_issuer_identifier(session, built)
        except SQLAlchemyError as e:
            if not _no_schema(e):
                raise
            # Not migrated yet (`commons db upgrade` builds its runtime first): nothing to do.
        yield built
    finally:
        built.close()


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """``rows`` as plain-text columns under headings: ``columns`` pairs each key with its
    heading; lists are joined with commas, ``None`` is shown as ``-``."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, list | tuple):
            return ",".join(str(v) for v in value)
        return str(value)

    lines = [[heading for _, heading in columns]]
    lines += [[cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def emit(as_json: bool, data: Any, text: str) -> None:
    """Print ``data`` as JSON with ``--json``, ``text`` otherwise."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        typer.echo(text)
