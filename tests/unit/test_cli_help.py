"""The help output of every ``commons`` command (issue 14 item 11): flags such as ``--json``
and ``--yes`` are shown as flags, never as options that take a ``<bool>``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer

from credit_commons.cli import app, main

# Typer's command objects (its vendored Click): a group has ``commands``, a flag option
# has ``is_flag``.
ROOT: Any = typer.main.get_command(app)


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


COMMANDS = list(_commands(ROOT))


def _flags(path: tuple[str, ...]) -> list[str]:
    command = ROOT
    for name in path:
        command = command.commands[name]
    return [
        opt
        for param in command.params
        if getattr(param, "is_flag", False)
        for opt in (*param.opts, *param.secondary_opts)
    ]


def test_every_command_is_walked() -> None:
    # The walk reaches the nested groups (a guard against an empty parametrisation).
    assert ("privacy", "erase") in COMMANDS
    assert ("log", "verify-receipt") in COMMANDS
    assert ("consent", "templates") in COMMANDS
    assert len(COMMANDS) > 50


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "commons")
def test_help_shows_flags_as_flags(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: commons")
    assert "<bool>" not in out
    for flag in ("--help", *_flags(path)):
        # A flag's line: the flag (or its --x / --no-x pair), then straight to its help.
        line = next(line for line in out.splitlines() if re.search(rf"(^|\s){flag}(\s|$)", line))
        assert re.search(rf"{re.escape(flag)}(\s/\s--[\w-]+)?(\s{{2,}}\S|$)", line), line
