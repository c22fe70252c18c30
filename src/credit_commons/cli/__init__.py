"""The ``commons`` command line.

One Typer app with a command group per domain, one module each in this package
(``cli/log.py`` is ``commons log …``), sharing :mod:`credit_commons.cli.support` for the
runtime, the unit of work, the output and the errors.  Settings are built once at the root
and handed down; every command calls the same service functions as the HTTP API and takes
``--json`` for machine-readable output.  :func:`main` is the single entry point that maps
:class:`~credit_commons.core.errors.CommonsError` to an exit code (see ``docs/cli.md``).

Each module imports what its commands need at its top.  The root loads a command's module
only when that command (or the root's own help) is asked for, so ``commons log status``
never pays for the web server ``commons serve`` imports, nor the EVM client of
``commons anchor deploy``.
"""

from __future__ import annotations

import json
import re
import sys

import pydantic
import typer
import typer._click.exceptions as click_exceptions
from pydantic_settings import SettingsError

from credit_commons import __version__
from credit_commons.cli.base import (
    Interrupted,
    JsonOption,
    LazyCommand,
    UsageError,
    emit,
    lazy,
    one_line,
    translate_error,
)
from credit_commons.core.errors import CommonsError, ConfigurationError, ExitCode
from credit_commons.core.settings import Settings

__all__ = ["COMMANDS", "SUMMARIES", "app", "main", "run"]

COMMANDS: tuple[LazyCommand, ...] = (
    # In the order `commons --help` lists them: (name, module in this package, is a group).
    ("version", None, False),
    ("serve", "serve", False),
    ("demo", "demo", False),
    ("worker", "worker", False),
    ("vault", "vault", True),
    ("identity", "identity", True),
    ("privacy", "privacy", True),
    ("admin", "admin", True),
    ("issuer", "issuer", True),
    ("verify", "verify", True),
    ("zk", "zk", True),
    ("rules", "rules", True),
    ("score", "score", True),
    ("wallet", "wallet", True),
    ("consent", "consent", True),
    ("lender", "lender", True),
    ("log", "log", True),
    ("witness", "witness", True),
    ("node", "node", True),
    ("committee", "committee", True),
    ("anchor", "anchor", True),
    ("db", "db", True),
    ("routes", "routes", True),
    ("backup", "backup", False),
    ("restore", "restore", False),
    ("keys", "keys", True),
    ("service-token", "service_token", True),
    ("did", "did", True),
)
"""Every command of the root: each module's ``app`` is the group itself, or holds the one
command."""

SUMMARIES = {
    "serve": "Serve the HTTP API (logs are JSON lines on stderr).",
    "demo": "Run the whole story end to end on the embedded defaults (SQLite, local key file):"
    " issuer, field agent, borrower, wallet, lender, consent, retrieval, revocation, audit.",
    "worker": "Run the log worker: sequence events, checkpoint, cosign, anchor.",
    "vault": "The vault: master keys, rotation, rewrap.",
    "identity": "Identities (operator access).",
    "privacy": "Data-subject requests: export and erasure.",
    "admin": "Administrator access.",
    "issuer": "The issuer: credential catalogue, batch issuance, trusted issuers.",
    "verify": "The verifier: OpenID4VP requests and decisions, trust bundle, policies.",
    "zk": "Zero-knowledge predicates: the signed statement registry.",
    "rules": "Reputation rule sets: the signed, time-locked registry.",
    "score": "Reputation scores: cached records and offline-verifiable bundles.",
    "wallet": "The holder's wallet.",
    "consent": "Consents: decide, inspect, history.",
    "lender": "A lender's path: key, registration, token, consent, retrieval, verification.",
    "log": "The transparency log.",
    "witness": "An independent log witness (tlog-witness).",
    "node": "A full node: follows a platform over NATS JetStream and mirrors it.",
    "committee": "The checkpoint committee: t-of-n BLS cosignatures on checkpoints.",
    "anchor": "Anchoring checkpoints to external ledgers.",
    "db": "Database schema.",
    "routes": "The route registry: every route, its authentication and rate limit.",
    "backup": "Back up the instance: the database (one snapshot), key metadata, the log's tiles"
    " and checkpoint, a manifest of hashes; secrets are left out and named (never overwrites).",
    "restore": "Restore a backup into an empty instance, held in backup-restore mode (reads"
    " served, writes refused) until an operator confirms; or confirm it; or show the mode.",
    "keys": "Signing keys and the master key.",
    "service-token": (
        "Service-to-service tokens: issue one, rotate the service keys, register a remote "
        "service's key, list them."
    ),
    "did": "Decentralised identifiers.",
}
"""The first paragraph of each command's help, for ``commons --help`` to list every command
without importing its module (each the command's own: ``tests/unit/cli/test_startup.py``)."""

app = typer.Typer(
    name="commons",
    cls=lazy(COMMANDS, SUMMARIES),
    help="Credit Commons: credentials, consent and a public transparency log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain help, as Click formats it: flags are shown as flags (Typer's rich help labels
    # every flag, --json and --yes included, as taking a "<bool>").
    rich_markup_mode=None,
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    """Build the settings once, from COMMONS_* environment variables."""
    try:
        ctx.obj = Settings()
    except SettingsError as e:
        # A list or mapping that is not JSON (pydantic-settings parses those itself).
        field = re.search(r'field "(\w+)"', str(e))
        name = f"COMMONS_{field.group(1).upper()}" if field else "a COMMONS_* variable"
        raise ConfigurationError(
            f"invalid settings: {name}: not valid JSON", hint='e.g. ["file"]'
        ) from e
    except pydantic.ValidationError as e:
        problems = "; ".join(f"{_variable(err['loc'])}: {err['msg']}" for err in e.errors())
        raise ConfigurationError(f"invalid settings: {problems}") from e


def _variable(loc: tuple[int | str, ...]) -> str:
    # The environment variable a settings error is about: COMMONS_*, or one of the
    # standard OTEL_* ones (core/tracing_settings.py).
    name = "_".join(str(p) for p in loc).upper()
    return name if name.startswith("OTEL_") else f"COMMONS_{name}"


@app.command()
def version(as_json: JsonOption = False) -> None:
    """Print the version."""
    emit(as_json, {"version": __version__}, f"commons {__version__}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (docs/cli.md): never a traceback.

    Every failure is printed as one line on stderr (``error: code: detail; hint: …``), or
    with ``--json`` as one problem+json line, and mapped to its exit code: a
    :class:`CommonsError` to its own, an ``OSError`` about a path to a ``file.*`` error, a
    database error to ``service.unavailable`` (exit 9; the driver's message, which may hold
    the URL, is never shown), Ctrl-C to ``cli.interrupted`` (exit 130), a usage error to 2,
    and anything unforeseen to ``commons.error`` (exit 1, naming only the exception class).
    """
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    try:
        # Outside standalone mode Typer returns an Exit's code instead of raising it, and
        # turns Ctrl-C into Exit(130) silently (typer/core.py `_main`).
        result = app(args=args, prog_name="commons", standalone_mode=False)
    except typer.Exit as exit_:
        return int(exit_.exit_code)
    except typer.TyperException as error:  # usage errors from the parser, Abort (a prompt)
        return _report(_cli_error(error), as_json, usage=error)
    except (Exception, KeyboardInterrupt) as error:  # every failure: one line and a code
        return _report(translate_error(error), as_json)
    if result == ExitCode.INTERRUPTED:
        return _report(Interrupted("interrupted"), as_json)
    return result if isinstance(result, int) else ExitCode.OK


def _cli_error(error: Exception) -> CommonsError | None:
    if isinstance(error, click_exceptions.NoArgsIsHelpError):
        return None  # `commons` alone prints its help
    if isinstance(error, click_exceptions.ClickException):
        return UsageError(error.format_message())
    return translate_error(error)


def _report(
    error: CommonsError | None, as_json: bool, usage: typer.TyperException | None = None
) -> int:
    show = getattr(usage, "show", None)
    if error is None or (not as_json and isinstance(error, UsageError) and callable(show)):
        # Click's own usage text (with "Try --help") is the friendlier answer for a person.
        if callable(show):
            show()
        return ExitCode.USAGE
    if as_json:
        typer.echo(json.dumps(error.problem(), sort_keys=True), err=True)
    else:
        typer.echo(f"error: {one_line(error)}", err=True)
    return error.exit_code


def run() -> None:
    """Console-script entry point: exit with :func:`main`'s code."""
    sys.exit(main())
