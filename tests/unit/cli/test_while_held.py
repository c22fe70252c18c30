"""Every ``commons`` command is classified for backup-restore mode (cli/while_held.py):
allowed while held, refused while held, or never opening this instance's database through
``runtime()`` — so a new command cannot slip in unclassified, and the fail-closed
allowlist is a decision made command by command."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

from credit_commons.cli import app
from credit_commons.cli.while_held import (
    ALLOWED_WHILE_HELD,
    REFUSED_WHILE_HELD,
    RESTORE_PROCEDURE,
    WITHOUT_RUNTIME,
)


def _leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
    # Typer's command objects (its vendored Click): a group has ``commands``; looking one up
    # loads its module (cli/base.py's lazy groups).
    if hasattr(command, "commands"):
        for name in list(command.commands):
            yield from _leaves(command.commands[name], (*path, name))
    else:
        yield " ".join(path)


COMMANDS = sorted(_leaves(typer.main.get_command(app)))
CLASSES = {
    "allowed": ALLOWED_WHILE_HELD,
    "refused": REFUSED_WHILE_HELD,
    "without runtime": WITHOUT_RUNTIME,
}


def test_the_walk_reaches_every_level() -> None:
    assert {"restore", "identity create", "admin lender approve", "wallet consent list"} <= set(
        COMMANDS
    )
    assert len(COMMANDS) > 150


def test_every_command_is_classified() -> None:
    unclassified = [c for c in COMMANDS if not any(c in names for names in CLASSES.values())]
    assert unclassified == [], (
        "classify these in cli/while_held.py: allowed while held (reads, the restore "
        f"procedure), refused, or without runtime: {unclassified}"
    )


def test_each_command_is_in_one_class_only() -> None:
    twice = {
        c: [name for name, names in CLASSES.items() if c in names]
        for c in COMMANDS
        if sum(c in names for names in CLASSES.values()) > 1
    }
    assert twice == {}


def test_no_class_names_a_command_that_does_not_exist() -> None:
    named = set().union(*CLASSES.values())
    assert sorted(named - set(COMMANDS)) == []


def test_the_restore_procedure_is_allowed_and_writes_are_not() -> None:
    assert RESTORE_PROCEDURE <= ALLOWED_WHILE_HELD
    assert {"restore", "log audit", "db current", "anchor status"} <= ALLOWED_WHILE_HELD
    assert {"identity create", "privacy erase", "log sequence"} <= REFUSED_WHILE_HELD
