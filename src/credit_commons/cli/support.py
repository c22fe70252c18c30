"""What every ``commons`` command group shares: how a group is made, the ``--json`` option,
the settings the root callback built, a runtime (and a unit of work) for one command, the
operator a command acts as, printing text or JSON, a progress bar on stderr, reading an
input file, and the translation of every failure into one of the project's errors."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

import pydantic
import typer
import typer.core
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

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
from credit_commons.identity.auth import Principal
from credit_commons.issuer.identifiers import record_issuer_identifier
from credit_commons.keys.algorithms import KeyType
from credit_commons.runtime import Runtime

if TYPE_CHECKING:
    from rich.progress import Progress

M = TypeVar("M", bound=pydantic.BaseModel)

__all__ = [
    "OPERATOR",
    "DatabaseNotMigrated",
    "DatabaseUnavailable",
    "Interrupted",
    "JsonOption",
    "KeyTypeChoice",
    "UsageError",
    "emit",
    "group",
    "holder",
    "lazy",
    "one_line",
    "operator",
    "progress_bar",
    "read_json_file",
    "read_text_file",
    "runtime",
    "settings",
    "table",
    "translate_error",
    "unit",
    "validated",
]

OPERATOR = "admin:cli"
"""The principal an operator's command acts as (recorded as the actor of its events)."""


def group(name: str, help: str, **options: Any) -> typer.Typer:
    """A command group: no arguments print its help, and its help is plain (as Click
    formats it: flags are shown as flags, not as options taking a ``<bool>``)."""
    return typer.Typer(
        name=name,
        help=help,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        **options,
    )


LazyCommand = tuple[str, str | None, bool]
"""A command of a lazy group: its name, the module of this package that holds it (``None``:
defined with the group), and whether it is a group itself (the module's ``app``; otherwise
the command of that name among the module's ``app`` commands)."""


class _Commands(MutableMapping[str, Any]):
    """A group's commands by name, in order; a module is imported when its command is first
    looked up (a name alone, for usage errors and suggestions, imports nothing)."""

    def __init__(self, defined: dict[str, Any], commands: Sequence[LazyCommand]) -> None:
        self._loaded = dict(defined)
        self._modules = {name: (module, is_group) for name, module, is_group in commands}
        self._order = [name for name, _, _ in commands]

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            module, is_group = self._modules[name]  # KeyError: no such command
            if module is None:
                raise KeyError(name)
            module_app = importlib.import_module(f"{__package__}.{module}").app
            made = typer.main.get_group(module_app)
            self._loaded[name] = made if is_group else made.commands[name]
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._modules.pop(name, None)
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        listed = [n for n in self._order if n in self._loaded or self._modules[n][0] is not None]
        yield from listed
        yield from (name for name in self._loaded if name not in self._modules)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def lazy(commands: Sequence[LazyCommand]) -> type[typer.core.TyperGroup]:
    """A group class whose ``commands`` come in this order, each from its module of this
    package when first used (``commons log status`` never imports what ``commons serve``
    needs); commands defined with the group itself are listed with module ``None``."""

    class LazyGroup(typer.core.TyperGroup):
        def __init__(self, **attrs: Any) -> None:
            super().__init__(**attrs)
            self.commands = _Commands(dict(self.commands), commands)

        def list_commands(self, ctx: Any) -> list[str]:
            return list(self.commands)  # the names, without loading any

    return LazyGroup


def holder() -> typer.Typer:
    """A Typer that holds the one command of a module that a lazy group loads."""
    return typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


class KeyTypeChoice(StrEnum):
    """Key types on the command line."""

    ED25519 = "ed25519"
    P256 = "p-256"

    @property
    def key_type(self) -> KeyType:
        """The key type this choice names."""
        return KeyType.ED25519 if self is KeyTypeChoice.ED25519 else KeyType.P256


def operator(name: str = OPERATOR) -> Principal:
    """The administrator principal an operator's command acts as."""
    return Principal(name, "admin")


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


@contextmanager
def unit(ctx: typer.Context, *, read_only: bool = False) -> Iterator[tuple[Runtime, Session]]:
    """A runtime and one unit of work for a command: committed if the block succeeds,
    rolled back if it raises (``read_only``: on the read-only sessions)."""
    with runtime(ctx) as rt, transaction(rt.read_sessions if read_only else rt.sessions) as s:
        yield rt, s


def validated(model: type[M], data: Any, what: str) -> M:
    """``data`` as ``model``; :class:`ValidationError` naming the fields that are wrong
    (``invalid {what}: a, b``) when it is not one."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as e:
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in e.errors()})
        raise ValidationError(f"invalid {what}: {', '.join(fields)}") from e


def read_json_file(path: Path, what: str, *, not_json: str = "is not JSON") -> Any:
    """The JSON value in ``path`` (``-``: standard input), for an input named ``what``.

    Raises what :func:`read_text_file` raises, and :class:`ValidationError`
    (``{what} {not_json}``) when the text is not JSON.
    """
    text = read_text_file(path, what)
    try:
        return json.loads(text)
    except ValueError as e:
        raise ValidationError(f"{what} {not_json}") from e


def progress_bar(as_json: bool) -> Progress:
    """A progress bar on stderr (none with ``--json``): description, bar, done/total, time."""
    from rich import console, progress  # deferred: ~60 ms, long commands only  # noqa: PLC0415

    return progress.Progress(
        "[progress.description]{task.description}",
        progress.BarColumn(),
        progress.MofNCompleteColumn(),
        progress.TimeElapsedColumn(),
        disable=as_json,
        console=console.Console(stderr=True),
    )


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
