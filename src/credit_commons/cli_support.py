"""What every ``commons`` command group shares: the ``--json`` option, the settings the
root callback built, a runtime for one command, and printing text or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from credit_commons.core.settings import Settings
from credit_commons.runtime import Runtime

__all__ = ["JsonOption", "emit", "runtime", "settings"]

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def settings(ctx: typer.Context) -> Settings:
    """The settings the root callback read from the environment."""
    built: Settings = ctx.obj
    return built


@contextmanager
def runtime(ctx: typer.Context) -> Iterator[Runtime]:
    """A runtime for one command, closed afterwards."""
    built = Runtime.build(settings(ctx))
    try:
        yield built
    finally:
        built.close()


def emit(as_json: bool, data: Any, text: str) -> None:
    """Print ``data`` as JSON with ``--json``, ``text`` otherwise."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        typer.echo(text)
