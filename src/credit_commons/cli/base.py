"""What the ``commons`` root needs and every command shares, importing no domain, no
database layer and no HTTP client: how a group is made (and loads its commands lazily), the
``--json`` option, printing text or JSON, and the translation of every failure into one of
the project's errors.

``import credit_commons.cli`` imports this module and not :mod:`credit_commons.cli.support`
(the runtime, and through it every domain), so ``commons --help``, ``commons version`` and
the usage errors start in a fraction of a second; ``tests/unit/cli/test_startup.py`` checks
that SQLAlchemy and httpx stay out.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer
import typer._click as click
import typer.core
from typer._click.utils import make_default_short_help

from credit_commons.core.errors import (
    CommonsError,
    ConfigurationError,
    ExitCode,
    UnavailableError,
)
from credit_commons.core.files import path_error

if TYPE_CHECKING:
    from sqlalchemy.exc import SQLAlchemyError

__all__ = [
    "DatabaseNotMigrated",
    "DatabaseUnavailable",
    "Interrupted",
    "JsonOption",
    "LazyCommand",
    "UsageError",
    "emit",
    "field_errors",
    "group",
    "holder",
    "lazy",
    "no_schema",
    "one_line",
    "translate_error",
]


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

    def __init__(
        self,
        defined: dict[str, Any],
        commands: Sequence[LazyCommand],
        summaries: Mapping[str, str],
    ) -> None:
        self._loaded = dict(defined)
        self._modules = {name: (module, is_group) for name, module, is_group in commands}
        self._order = [name for name, _, _ in commands]
        self._summaries = summaries

    def short_help(self, name: str, limit: int) -> str:
        """The line a group's help shows for ``name``: from its summary while it is not
        loaded (as Click shortens a help text without a ``short_help``), else its own."""
        if name not in self._loaded and name in self._summaries:
            return make_default_short_help(self._summaries[name], limit).strip()
        short: str = self[name].get_short_help_str(limit)
        return short

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


def lazy(
    commands: Sequence[LazyCommand], summaries: Mapping[str, str] | None = None
) -> type[typer.core.TyperGroup]:
    """A group class whose ``commands`` come in this order, each from its module of this
    package when first used (``commons log status`` never imports what ``commons serve``
    needs); commands defined with the group itself are listed with module ``None``.

    ``summaries`` holds, by name, the first paragraph of a command's help: the group's help
    lists those commands without importing their modules (``commons --help`` imports none).
    Each must be the command's own (``tests/unit/cli/test_startup.py`` compares them).
    """

    class LazyGroup(typer.core.TyperGroup):
        def __init__(self, **attrs: Any) -> None:
            super().__init__(**attrs)
            self.lazy_commands = _Commands(dict(self.commands), commands, summaries or {})
            self.commands = self.lazy_commands

        def list_commands(self, ctx: Any) -> list[str]:
            return list(self.commands)  # the names, without loading any

        def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
            # TyperGroup.format_commands (plain help) without loading a summarised command;
            # no command of this CLI is hidden or deprecated.
            names = self.list_commands(ctx)
            if not names:
                return
            limit = formatter.width - 6 - max(len(name) for name in names)
            rows = [(name, self.lazy_commands.short_help(name, limit)) for name in names]
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    return LazyGroup


def holder() -> typer.Typer:
    """A Typer that holds the one command of a module that a lazy group loads."""
    return typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


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


_MAX_FIELD_ERRORS = 10


def field_errors(problem: Mapping[str, object]) -> list[str]:
    """The field-level errors of a problem+json (its ``errors``: ``{"field", "message"}``
    each, as the API's validation errors and ``ValidationError(extra={"errors": …})``
    give them) as ``field: message``, at most ten; none when it has none."""
    listed = problem.get("errors")
    if not isinstance(listed, list):
        return []
    out = []
    for item in listed[:_MAX_FIELD_ERRORS]:
        if isinstance(item, Mapping) and isinstance(item.get("message"), str):
            field = item.get("field")
            message = str(item["message"])
            out.append(f"{field}: {message}" if isinstance(field, str) and field else message)
    return out


def one_line(error: CommonsError) -> str:
    """``code: detail``, then the problem's field errors (``(field: message; …)``) and
    ``; hint: …`` when there are, on a single line."""
    text = f"{error.code}: {error.detail}"
    fields = field_errors(error.problem())
    if fields:
        text += f" ({'; '.join(fields)})"
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
    # A SQLAlchemy error can only have been raised once SQLAlchemy was imported (by the
    # command that ran); `commons --help` never imports it.
    database_errors = sys.modules.get("sqlalchemy.exc")
    if database_errors is not None and isinstance(error, database_errors.SQLAlchemyError):
        return _database_error(error)
    return CommonsError(
        f"unexpected {error.__class__.__name__}",
        hint="this is a bug in commons; please report it with the command you ran",
    )


def _origin(error: SQLAlchemyError) -> BaseException | None:
    # The driver's exception under a DBAPIError.  sqlalchemy.exc is loaded: `error` is one.
    database_errors = sys.modules["sqlalchemy.exc"]
    origin: BaseException | None = (
        error.orig if isinstance(error, database_errors.DBAPIError) else None
    )
    return origin


def no_schema(error: SQLAlchemyError) -> bool:
    """Whether ``error`` says the database has no schema (not migrated yet)."""
    # SQLite says "no such table"; PostgreSQL raises UndefinedTable (SQLSTATE 42P01).
    origin = _origin(error)
    return "no such table" in str(origin) or getattr(origin, "sqlstate", None) == "42P01"


def _database_error(error: SQLAlchemyError) -> CommonsError:
    origin = _origin(error)
    name = origin.__class__.__name__ if origin is not None else error.__class__.__name__
    if no_schema(error):
        return DatabaseNotMigrated(
            "the database has no schema for this version", hint="run `commons db upgrade`"
        )
    return DatabaseUnavailable(
        f"database error ({name})",
        hint="check that COMMONS_DATABASE_URL names a running database this user may use",
    )


JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def emit(as_json: bool, data: Any, text: str) -> None:
    """Print ``data`` as JSON with ``--json``, ``text`` otherwise."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        typer.echo(text)
