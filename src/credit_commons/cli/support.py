"""What every ``commons`` command group shares: the settings the root callback built, a
runtime (and a unit of work) for one command, the operator a command acts as, a progress
bar on stderr, reading an input file; and, from :mod:`credit_commons.cli.base` (what the
root needs, importing no domain), how a group is made, the ``--json`` option, printing text
or JSON, and the translation of every failure into one of the project's errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic
import typer
import typer.core
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from credit_commons.cli.base import (
    DatabaseNotMigrated,
    DatabaseUnavailable,
    Interrupted,
    JsonOption,
    LazyCommand,
    UsageError,
    emit,
    group,
    holder,
    lazy,
    no_schema,
    one_line,
    translate_error,
)
from credit_commons.cli.while_held import ALLOWED_WHILE_HELD, RESTORE_PROCEDURE, command_name
from credit_commons.core.db import transaction
from credit_commons.core.db_read_only import is_write_refusal, refuse_writes
from credit_commons.core.errors import ValidationError
from credit_commons.core.files import path_error
from credit_commons.core.settings import Settings
from credit_commons.identity.auth import Principal
from credit_commons.issuer.identifiers import record_issuer_identifier
from credit_commons.keys.algorithms import KeyType
from credit_commons.ledger.restore_mode import RestoreHold, restore_hold
from credit_commons.runtime import Runtime
from credit_commons.web.erasure import install_erasure

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
    "LazyCommand",
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


def settings(ctx: typer.Context) -> Settings:
    """The settings the root callback read from the environment."""
    built: Settings = ctx.obj
    return built


@contextmanager
def runtime(ctx: typer.Context, *, owner: bool = False) -> Iterator[Runtime]:
    """A runtime for one command, closed afterwards (``owner``: connected as the schema's
    owner, ``COMMONS_MIGRATION_DATABASE_URL``, when that is set).

    Every erasure on it also forgets the console's sessions and sign-in codes of the
    subject (``web/erasure.py``).  While the database is held in backup-restore mode only
    the commands of :data:`~credit_commons.cli.while_held.ALLOWED_WHILE_HELD` run, and
    nothing is written for them here; those that are reads run on connections that refuse
    writes at the database (``core/db_read_only.py``), so a read that would write after all
    (a key made on its first use, say) is refused as any write is.  Otherwise, on a migrated
    database, the public URL joins the issuer identifiers first, so what this command issues
    stays verifiable after a later change of public URL (``issuer/identifiers.py``).

    Raises :class:`~credit_commons.ledger.restore_mode.RestoreMode` (exit 9, the API's
    ``service.restore_mode``) for any other command while held.
    """
    chosen = settings(ctx)
    if owner and chosen.migration_database_url:
        chosen = chosen.model_copy(update={"database_url": chosen.migration_database_url})
    built = Runtime.build(chosen)
    install_erasure(built)  # an erasure from the CLI also ends the console's sessions
    try:
        hold = _hold(built)
        if hold is None:
            _record_issuer_identifier(built)
            yield built
            return
        name = command_name(ctx)
        if name not in ALLOWED_WHILE_HELD:
            raise hold.error()
        if name in RESTORE_PROCEDURE:
            yield built
            return
        refuse_writes(built.engine)  # a read, held to it by the database itself
        try:
            yield built
        except SQLAlchemyError as e:
            if is_write_refusal(e):
                raise hold.error() from e
            raise
    finally:
        built.close()


def _hold(rt: Runtime) -> RestoreHold | None:
    # Read once, in a transaction of its own that writes nothing.
    try:
        with transaction(rt.read_sessions) as session:
            return restore_hold(session)
    except SQLAlchemyError as e:
        if not no_schema(e):
            raise
        return None  # not migrated yet (`commons restore` into an empty database)


def _record_issuer_identifier(rt: Runtime) -> None:
    try:
        with transaction(rt.sessions) as session:
            record_issuer_identifier(session, rt)
    except SQLAlchemyError as e:
        if not no_schema(e):
            raise
        # Not migrated yet (`commons db upgrade` builds its runtime first): nothing to do.


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
