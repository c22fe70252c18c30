"""``commons`` run in the test's own process, as the program would run it in a given
environment and directory: its entry point (:func:`credit_commons.cli.main`, which maps
every failure to one line and an exit code), ``os.environ`` replaced by exactly that
environment, standard input empty, standard output and error captured.

For the end-to-end tests that drive a real ``commons serve`` through many CLI commands: a
program start costs about a second of imports, which was most of their time; what happens
at the process boundary itself (one line per failure, exit codes, Ctrl-C) is tested with
real processes in ``tests/e2e/test_cli_errors.py``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from typer.testing import CliRunner

from credit_commons.cli import main

__all__ = ["commons"]


def commons(
    args: Sequence[str], env: Mapping[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``commons args`` with ``env`` as its whole environment (in ``cwd``): its exit code,
    standard output and standard error, as :func:`subprocess.run` would give them."""
    # Every variable not in `env` is removed for the call (None), and restored after it.
    overrides: dict[str, str | None] = {name: None for name in os.environ if name not in env}
    overrides.update(env)
    with contextlib.ExitStack() as stack:
        out, err, _ = stack.enter_context(CliRunner().isolation(env=overrides))
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        code = main(list(args))
        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return subprocess.CompletedProcess(["commons", *args], code, stdout, stderr)
