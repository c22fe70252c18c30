"""The ``commons`` start-up stays cheap: ``import credit_commons.cli`` and the root's help
import no database layer, no HTTP client and no command module, and the root lists every
command from its summary, which must be the command's own help."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import typer
import typer._click as click

from credit_commons import cli

HEAVY = ("sqlalchemy", "httpx", "credit_commons.runtime", "credit_commons.cli.support")


def _imported_after(code: str) -> list[str]:
    # A fresh interpreter: this test process has long imported everything.
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    modules: list[str] = json.loads(done.stdout.splitlines()[-1])
    return modules


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m in HEAVY or m.startswith(tuple(f"{h}." for h in HEAVY))]


def test_importing_the_cli_imports_no_database_layer_nor_http_client() -> None:
    modules = _imported_after("import credit_commons.cli")
    assert "credit_commons.cli" in modules  # the probe did import it
    assert _heavy(modules) == []


@pytest.mark.parametrize("argv", [["--help"], [], ["version"], ["no-such-command"]])
def test_the_root_alone_loads_no_command_module(argv: list[str]) -> None:
    code = "import contextlib, io\nfrom credit_commons.cli import main\n" + (
        f"with contextlib.redirect_stdout(io.StringIO()), "
        f"contextlib.redirect_stderr(io.StringIO()):\n    main({argv!r})"
    )
    modules = _imported_after(code)
    assert "credit_commons.cli.base" in modules
    assert _heavy(modules) == []
    loaded = {m for m in modules if m.startswith("credit_commons.cli.")}
    assert loaded == {"credit_commons.cli.base"}


def test_a_command_still_loads_its_module() -> None:
    # The guard above is not vacuous: a database command does import SQLAlchemy.
    modules = _imported_after("import credit_commons.cli.db")
    assert "sqlalchemy" in modules
    assert "credit_commons.cli.support" in modules


def _help(command: Any, name: str, width: int) -> str:
    return str(command.get_help(click.Context(command, info_name=name, terminal_width=width)))


@pytest.mark.parametrize("width", [60, 80, 200])
def test_the_root_help_is_the_same_with_every_command_loaded(width: int) -> None:
    lazy_root: Any = typer.main.get_command(cli.app)
    listed = _help(lazy_root, "commons", width)
    loaded_root: Any = typer.main.get_command(cli.app)
    for name, _, _ in cli.COMMANDS:
        assert loaded_root.commands[name] is not None  # loads its module
    assert _help(loaded_root, "commons", width) == listed
    assert all(name in listed for name, _, _ in cli.COMMANDS)


def test_each_summary_is_the_first_paragraph_of_its_command_help() -> None:
    root: Any = typer.main.get_command(cli.app)
    modules = {name for name, module, _ in cli.COMMANDS if module is not None}
    assert set(cli.SUMMARIES) == modules  # every command of a module has one
    for name, summary in cli.SUMMARIES.items():
        first = root.commands[name].help.split("\n\n")[0]
        assert " ".join(first.split()) == summary, name


_LAZY = ("redis", "nats", "aiohttp")


def test_importing_the_http_app_imports_neither_redis_nor_nats() -> None:
    # Every `commons serve` worker and every test process imports the app: Redis (only
    # with COMMONS_REDIS_URL) and NATS with aiohttp (only when the publisher connects) are
    # imported where they are used.
    modules = _imported_after("import credit_commons.gateway.app")
    assert "credit_commons.gateway.app" in modules
    assert _lazy(modules) == []


def test_the_lazy_guard_sees_them_when_imported() -> None:
    # The guard above is not vacuous: the probe does see them once they are imported.
    modules = _imported_after("import credit_commons.gateway.app\nimport redis, nats")
    assert sorted(m for m in _lazy(modules) if "." not in m) == ["aiohttp", "nats", "redis"]


def _lazy(modules: list[str]) -> list[str]:
    return [m for m in modules if m in _LAZY or m.startswith(tuple(f"{x}." for x in _LAZY))]
