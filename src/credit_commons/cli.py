"""The ``commons`` command line.

One Typer app with a sub-command group per domain.  Settings are built once at the root and
handed down; every command calls the same service functions as the HTTP API and takes
``--json`` for machine-readable output.  :func:`main` is the single entry point that maps
:class:`~credit_commons.core.errors.CommonsError` to an exit code (see ``docs/cli.md``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pydantic
import typer
import typer._click.exceptions as click_exceptions
from pydantic_settings import SettingsError

from credit_commons import __version__
from credit_commons.cli_support import (
    Interrupted,
    JsonOption,
    UsageError,
    one_line,
    read_text_file,
    translate_error,
)
from credit_commons.cli_support import emit as _emit
from credit_commons.cli_support import runtime as _runtime
from credit_commons.cli_support import settings as _settings
from credit_commons.consent.cli import consent_app
from credit_commons.core.errors import CommonsError, ConfigurationError, ExitCode
from credit_commons.core.heap import freeze_startup_heap
from credit_commons.core.settings import Settings
from credit_commons.lender_cli import lender_admin_app, lender_app
from credit_commons.runtime import Runtime
from credit_commons.wallet.cli import WalletOption
from credit_commons.wallet.cli import install as install_wallet_commands
from credit_commons.wallet.cli import passphrase as wallet_passphrase

__all__ = ["app", "main", "run"]

app = typer.Typer(
    name="commons",
    help="Credit Commons: credentials, consent and a public transparency log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain help, as Click formats it: flags are shown as flags (Typer's rich help labels
    # every flag, --json and --yes included, as taking a "<bool>").
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="Signing keys and the master key.", no_args_is_help=True)
did_app = typer.Typer(help="Decentralised identifiers.", no_args_is_help=True)
log_app = typer.Typer(help="The transparency log.", no_args_is_help=True)
witness_app = typer.Typer(help="An independent log witness (tlog-witness).", no_args_is_help=True)
anchor_app = typer.Typer(help="Anchoring checkpoints to external ledgers.", no_args_is_help=True)
vault_app = typer.Typer(help="The vault: master keys, rotation, rewrap.", no_args_is_help=True)
app.add_typer(vault_app, name="vault")
identity_app = typer.Typer(help="Identities (operator access).", no_args_is_help=True)
privacy_app = typer.Typer(help="Data-subject requests: export and erasure.", no_args_is_help=True)
admin_app = typer.Typer(help="Administrator access.", no_args_is_help=True)
app.add_typer(identity_app, name="identity")
app.add_typer(privacy_app, name="privacy")
app.add_typer(admin_app, name="admin")
issuer_app = typer.Typer(
    help="The issuer: credential catalogue, batch issuance, trusted issuers.", no_args_is_help=True
)
issuer_type_app = typer.Typer(help="Credential types.", no_args_is_help=True)
issuer_app.add_typer(issuer_type_app, name="type")
app.add_typer(issuer_app, name="issuer")
wallet_app = typer.Typer(help="The holder's wallet.", no_args_is_help=True)
install_wallet_commands(wallet_app)
app.add_typer(wallet_app, name="wallet")
app.add_typer(consent_app, name="consent")
app.add_typer(lender_app, name="lender")
admin_app.add_typer(lender_admin_app, name="lender")

_OPERATOR = "admin:cli"
# Path options and arguments say readable=False: a path is checked where it is used, and a
# failure there is one file.* error (core/files.py).  Click's own readability test would
# refuse a write-only output and answer an unreadable input with a usage error instead.
app.add_typer(log_app, name="log")
app.add_typer(witness_app, name="witness")
app.add_typer(anchor_app, name="anchor")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(did_app, name="did")


class KeyTypeChoice(StrEnum):
    """Key types on the command line."""

    ED25519 = "ed25519"
    P256 = "p-256"


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
        problems = "; ".join(
            f"COMMONS_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in e.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from e


@app.command()
def version(as_json: JsonOption = False) -> None:
    """Print the version."""
    _emit(as_json, {"version": __version__}, f"commons {__version__}")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default COMMONS_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to listen on (default COMMONS_PORT, 8000).", min=1, max=65535),
    ] = None,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the log worker in this process.")
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes serving the API (PostgreSQL only; the log worker still "
            "runs once, in this process).",
            min=1,
            max=64,
        ),
    ] = 1,
    as_json: JsonOption = False,
) -> None:
    """Serve the HTTP API (logs are JSON lines on stderr).

    Without COMMONS_PUBLIC_URL the public URL is this server's own address; a public URL
    that names this machine on another port is reported at start-up."""
    import uvicorn

    from credit_commons.core.logging import configure_logging
    from credit_commons.gateway import create_app
    from credit_commons.gateway.app import startup_checks
    from credit_commons.gateway.serving import serve_options, serve_workers, workers_warnings
    from credit_commons.ledger.worker import LogWorker

    base = _settings(ctx)
    settings = base.listening_on(host or base.host, port or base.port)
    configure_logging(settings.log_level)
    warnings = workers_warnings(settings, workers)
    disagreement = settings.public_url_disagreement()
    if disagreement:
        warnings.append(f"{disagreement}; links will point there")
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    rt = Runtime.build(settings)
    try:
        # Refusals (a changed pepper, a disagreeing COMMONS_LOG_ORIGIN) before serving, so
        # they print as one line with their exit code instead of a failed lifespan.
        identity = startup_checks(rt)
        application = (
            create_app(settings, runtime=rt, run_worker=worker, freeze_heap=True)
            if workers == 1
            else None
        )
    except BaseException:
        rt.close()
        raise
    origin = identity.origin if identity is not None else None
    if identity is not None:
        _warn_if_diverged(rt)
    listening = f"http://{settings.host}:{settings.port}"
    if as_json:
        line = {
            "serving": listening,
            "public_url": settings.public_url,
            "log_origin": origin,
            "workers": workers,
        }
        typer.echo(json.dumps(line))
    else:
        typer.echo(
            f"serving on {listening}; public URL {settings.public_url}"
            + (f"; log origin {origin}" if origin else "")
            + (f"; {workers} worker processes" if workers > 1 else "")
        )
    if application is not None:
        uvicorn.run(application, host=settings.host, port=settings.port, **serve_options(settings))
        return
    # Several workers: this process supervises them and runs the one log worker.
    try:
        serve_workers(settings, workers, log_worker=LogWorker(rt) if worker else None)
    finally:
        rt.close()


@app.command()
def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Keep the demo's state here (default: a fresh temporary directory).",
            readable=False,
        ),
    ] = None,
    port: Annotated[
        int,
        typer.Option(
            help="Loopback port of the demo's platform (default: a free one).", min=0, max=65535
        ),
    ] = 0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the transcript, every receipt and the log's verifier key included, "
            "as JSON.",
        ),
    ] = False,
) -> None:
    """Run the whole story end to end on the embedded defaults (SQLite, local key file):
    issuer, field agent, borrower, wallet, lender, consent, retrieval, revocation, audit."""
    import tempfile

    from credit_commons.core.errors import UnavailableError
    from credit_commons.core.migrate import upgrade
    from credit_commons.demo import bound_socket, run_story, serve_in_thread
    from credit_commons.gateway import create_app
    from credit_commons.ledger.identity import log_identity

    with tempfile.TemporaryDirectory(prefix="commons-demo-") as tmp:
        root = data_dir or Path(tmp)
        try:
            sock = bound_socket(port)
        except OSError as e:
            raise UnavailableError(
                f"cannot listen on 127.0.0.1:{port}: {(e.strerror or 'refused').lower()}",
                hint="choose another --port, or leave it out for a free one",
            ) from e
        port = sock.getsockname()[1]
        # Its own state only: an explicit data directory locates the database, key file and
        # anchor journal (whatever COMMONS_DATABASE_URL and the like say), and nothing
        # configured outside is reached: no HSM, chain, witness or shared Redis.
        settings = Settings(
            data_dir=root / "var",
            public_url=f"http://127.0.0.1:{port}",
            env="development",
            log_origin=None,
            kms="local",
            anchor_backends=["file"],
            log_witnesses=[],
            redis_url=None,
        )

        def say(text: str) -> None:
            typer.echo(text, err=as_json)

        rt = Runtime.build(settings)
        say(f"Credit Commons demo: platform on http://127.0.0.1:{port}, state in {root}")
        upgrade(rt.engine)
        with serve_in_thread(create_app(settings, runtime=rt), sock) as base:
            transcript = run_story(rt, base, root, say=say)
            identity = log_identity(rt)
        if as_json:
            # The log's key, so the transcript's receipts verify after the run
            # (`commons log verify-receipt FILE --log-key VKEY`).
            log = {"origin": identity.origin, "vkey": identity.vkey}
            body = {"platform": base, "log": log, "steps": transcript.steps}
            typer.echo(json.dumps(body, indent=2, default=str))
        else:
            typer.echo("Done: every step checked.")


@app.command("worker")
def worker_command(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Run one pass and exit.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Run the log worker: sequence events, checkpoint, cosign, anchor."""
    from credit_commons.core.logging import configure_logging
    from credit_commons.ledger.worker import LogWorker

    settings = _settings(ctx)
    configure_logging(settings.log_level)
    from credit_commons.core.db import transaction
    from credit_commons.ledger.identity import log_identity
    from credit_commons.privacy.pepper import check_peppers

    with _runtime(ctx) as rt:
        with transaction(rt.sessions) as session:
            check_peppers(session, rt)
        log_identity(rt)  # recorded on the log's first start; a disagreeing origin refused
        worker = LogWorker(rt)
        if once:
            # Refused before anything runs when the database does not continue the
            # published log (ledger/continuity.py): exit 7 naming the gap.
            _continuity(rt).check()
        else:
            _warn_if_diverged(rt)
            freeze_startup_heap()
        if once:
            report = worker.run_once(force_checkpoint=True)
            while report.backlog:
                report = worker.run_once(force_checkpoint=True)
            if report.diverged is not None:
                raise report.diverged.error()
            _emit(
                as_json,
                {
                    "sequenced": report.sequenced,
                    "size": report.size,
                    "checkpoint": report.checkpoint,
                    **report.extra,
                },
                f"sequenced {report.sequenced}, size {report.size}, checkpoint {report.checkpoint}",
            )
            return
        try:
            worker.run_forever()
        except KeyboardInterrupt:
            worker.stop()


# -- log -----------------------------------------------------------------------------------


def _continuity(rt: Runtime) -> Any:
    """The database's tree beside every record of what the log published (a Continuity)."""
    from credit_commons.core.db import transaction
    from credit_commons.ledger.continuity import ContinuityGuard
    from credit_commons.ledger.identity import log_identity

    identity = log_identity(rt)
    with transaction(rt.read_sessions) as session:
        return ContinuityGuard(rt.settings).assess(session, identity, rt.extras_tile_cache())


def _warn_if_diverged(rt: Runtime) -> None:
    """At a start that keeps running (serve, worker): name the gap on stderr, once."""
    gap = _continuity(rt).gap
    if gap is not None:
        error = gap.error()
        typer.echo(
            f"warning: {error.code}: {error.detail}; the log will not sequence or sign until "
            f"recovered; hint: {error.hint}",
            err=True,
        )


@log_app.command("status")
def log_status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Compare the database's tree with what this log published (exit 7 if it does not
    continue it: a restored backup; docs/log.md)."""
    with _runtime(ctx) as rt:
        continuity = _continuity(rt)
    data = continuity.to_json()
    published = continuity.published
    text = (
        f"ok: the database (size {continuity.database_size}) continues the published log"
        + (f" (newest: size {published.size}, {published.source})" if published else "")
        if continuity.gap is None
        else f"diverged: {continuity.gap.detail()}"
    )
    _emit(as_json, data, "\n".join([text, *(f"warning: {w}" for w in continuity.warnings)]))
    if continuity.gap is not None:
        raise typer.Exit(ExitCode.INTEGRITY)


@log_app.command("replay")
def log_replay(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="Published tiles: a directory holding tile/entries/… (tlog-tiles), or the "
            "base URL of a tlog-tiles server.",
        ),
    ],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: append the leaves to COMMONS_DATABASE_URL.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """After a restore: append the published leaves the database lacks from published
    tiles, check the published root, and let the log continue (docs/log.md)."""
    import httpx

    from credit_commons.core.db import transaction
    from credit_commons.core.errors import ValidationError
    from credit_commons.core.files import path_error
    from credit_commons.ledger.continuity import ContinuityGuard
    from credit_commons.ledger.identity import log_identity
    from credit_commons.ledger.recovery import DirectoryTiles, HttpTiles, TileSource, replay

    if not yes:
        raise ValidationError(
            "replay appends the published leaves to COMMONS_DATABASE_URL; add --yes to confirm"
        )
    tiles: TileSource
    client = None
    if re.match(r"https?://", source):
        client = httpx.Client(base_url=source.rstrip("/") + "/", timeout=30.0)
        tiles = HttpTiles(client)
    else:
        directory = Path(source)
        try:
            os.listdir(directory / "tile" / "entries")  # the tlog-tiles layout, readable
        except OSError as e:
            raise path_error(e, "read the tile directory") from e
        tiles = DirectoryTiles(directory)
    try:
        with _runtime(ctx) as rt:
            identity = log_identity(rt)
            with transaction(rt.sessions) as session:
                report = replay(
                    session,
                    ContinuityGuard(rt.settings),
                    identity,
                    tiles,
                    clock=rt.clock,
                    actor=rt.operator_actor(),
                )
    finally:
        if client is not None:
            client.close()
    data = report.to_json()
    _emit(
        as_json,
        data,
        f"replayed {data['replayed']} leaves [{report.from_size}, {report.to_size}): the "
        f"database's root at {report.to_size} is the published one; "
        f"{report.events_missing} of their events' bodies are not in this database",
    )


@log_app.command("new-origin")
def log_new_origin(
    ctx: typer.Context,
    origin: Annotated[
        str, typer.Option("--origin", help="The new log's origin, never used before.")
    ],
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Confirm: freeze the current origin for good."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """After a restore whose lost leaves cannot be replayed: freeze the current origin and
    continue the log under a declared new one (docs/log.md)."""
    from credit_commons.core.db import transaction
    from credit_commons.core.errors import ValidationError
    from credit_commons.ledger.continuity import ContinuityGuard
    from credit_commons.ledger.identity import log_identity
    from credit_commons.ledger.recovery import declare_new_origin

    if not yes:
        raise ValidationError(
            "a new origin freezes the current one for good (it is never signed again); "
            "add --yes to confirm"
        )
    with _runtime(ctx) as rt:
        identity = log_identity(rt)
        with transaction(rt.sessions) as session:
            declared = declare_new_origin(
                session,
                ContinuityGuard(rt.settings),
                identity,
                origin,
                clock=rt.clock,
                actor=rt.operator_actor(),
            )
    lost = declared.lost_leaves
    _emit(
        as_json,
        declared.to_json(),
        f"origin {declared.frozen_origin} frozen at published size {declared.published_size}"
        + (f" ({lost} leaves lost)" if lost is not None else "")
        + f"; the log continues as {declared.origin}: set COMMONS_LOG_ORIGIN to it or unset it, "
        "give witnesses its key, and restart",
    )


@log_app.command("sequence")
def log_sequence(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Sequence every pending event into the log now."""
    from credit_commons.ledger.sequencer import sequence_pending
    from credit_commons.ledger.steps import default_probes

    with _runtime(ctx) as rt:
        # As the worker does before its first pass: a witness further than this database
        # says so now, before leaves that differ from the published ones are appended.
        for probe in default_probes(rt):
            probe(rt, 0)
        _continuity(rt).check()
        result = sequence_pending(rt.sessions, limit=rt.settings.log_batch_size)
    _emit(
        as_json,
        {"sequenced": result.appended, "size": result.size, "root": result.root.b64()},
        f"sequenced {result.appended}; log size {result.size}",
    )


@log_app.command("checkpoint")
def log_checkpoint(
    ctx: typer.Context,
    publish: Annotated[
        bool, typer.Option("--publish", help="Sequence and sign a new checkpoint first.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Print the latest checkpoint (signed note) and the log's verifier key."""
    from credit_commons.core.db import transaction
    from credit_commons.core.errors import NotFoundError
    from credit_commons.ledger import service as log_service
    from credit_commons.ledger.identity import log_identity
    from credit_commons.ledger.worker import LogWorker

    with _runtime(ctx) as rt:
        if publish:
            _continuity(rt).check()
            worker = LogWorker(rt)
            while True:
                report = worker.run_once(force_checkpoint=True)
                if report.diverged is not None:
                    raise report.diverged.error()
                if not report.backlog:
                    break
        identity = log_identity(rt)
        origin, vkey = identity.origin, identity.vkey
        with transaction(rt.sessions) as session:
            row = log_service.latest_checkpoint(session)
            if row is None:
                raise NotFoundError(
                    "the log has no checkpoint yet", hint="run `commons log checkpoint --publish`"
                )
            note = log_service.checkpoint_with_cosignatures(session, row)
    _emit(
        as_json,
        {"checkpoint": note, "size": row.size, "origin": origin, "log_key": vkey},
        note.rstrip("\n"),
    )


def _proof_output(as_json: bool, data: dict[str, Any]) -> None:
    _emit(as_json, data, "\n".join(data["proof"]) if data["proof"] else "(empty proof)")


@log_app.command("prove-inclusion")
def log_prove_inclusion(
    ctx: typer.Context,
    index: Annotated[int, typer.Option("--index", min=0, help="Leaf index.")],
    size: Annotated[int | None, typer.Option("--size", min=1, help="Tree size.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Print the inclusion proof of a leaf (base64 hashes, leaf side first)."""
    from credit_commons.core.db import transaction
    from credit_commons.ledger import service as log_service

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        data = log_service.inclusion_proof(session, index, size)
    _proof_output(as_json, data)


@log_app.command("prove-consistency")
def log_prove_consistency(
    ctx: typer.Context,
    from_: Annotated[int, typer.Option("--from", min=1, help="Older tree size.")],
    to: Annotated[int | None, typer.Option("--to", min=1, help="Newer tree size.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Print the consistency proof between two tree sizes."""
    from credit_commons.core.db import transaction
    from credit_commons.ledger import service as log_service

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        data = log_service.consistency_proof(session, from_, to)
    _proof_output(as_json, data)


@log_app.command("verify-consistency")
def log_verify_consistency(
    ctx: typer.Context,
    old_checkpoint: Annotated[
        Path,
        typer.Argument(
            help="A checkpoint (signed note) kept earlier ('-' for stdin).", readable=False
        ),
    ],
    url: Annotated[
        str | None,
        typer.Option("--url", help="Ask this server instead of the local log (needs --log-key)."),
    ] = None,
    log_key: Annotated[
        str | None,
        typer.Option("--log-key", help="The pinned log verifier key (default: this log's)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check that today's checkpoint extends one kept earlier (signatures and an RFC 6962
    consistency proof; exit 10 for another log, 11 for a fork)."""
    from credit_commons.ledger.extension import parse_checkpoint_note, verify_extension
    from credit_commons.ledger.extension_inputs import (
        local_extension_inputs,
        remote_extension_inputs,
    )

    old_note = read_text_file(old_checkpoint, "the checkpoint file")
    old = parse_checkpoint_note(old_note)
    if url is not None:
        if log_key is None:
            raise UsageError("--url needs --log-key: the key is pinned, not taken from the server")
        vkey = log_key
        new_note, proof = remote_extension_inputs(url, old.size)
    else:
        with _runtime(ctx) as rt:
            vkey, new_note, proof = local_extension_inputs(rt, old.size, log_key)
    found = verify_extension(old_note, new_note, proof, vkey)
    data = {
        "ok": True,
        "origin": found.new.origin,
        "old_size": found.old.size,
        "new_size": found.new.size,
        "checkpoint": new_note,
    }
    _emit(
        as_json,
        data,
        f"ok: {found.new.origin} at size {found.new.size} extends the kept checkpoint "
        f"at size {found.old.size}",
    )


@log_app.command("entries")
def log_entries(
    ctx: typer.Context,
    start: Annotated[int, typer.Option("--start", min=0, help="First leaf index.")],
    end: Annotated[int, typer.Option("--end", min=1, help="One past the last leaf index.")],
    as_json: JsonOption = False,
) -> None:
    """Print log entries [start, end) (at most 1000) with their leaf hashes."""
    from credit_commons.core.db import transaction
    from credit_commons.ledger import service as log_service

    with _runtime(ctx) as rt, transaction(rt.read_sessions) as session:
        rows = log_service.entries(session, start, end)
    _emit(
        as_json,
        rows,
        "\n".join(f"{r['index']:>8} {r['entry']['type']:<22} {r['entry']['id']}" for r in rows),
    )


@log_app.command("receipt")
def log_receipt(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(help="The event id (evt_…).")],
    public: Annotated[
        bool, typer.Option("--public", help="Leave out the event body (pseudonyms, details).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Print the receipt of an event as JSON (for `commons log verify-receipt`)."""
    from credit_commons.core.db import transaction
    from credit_commons.ledger import service as log_service

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        body = log_service.receipt(session, event_id, include_event=not public)
    typer.echo(json.dumps(body, indent=2, sort_keys=True))
    del as_json  # a receipt is always JSON


@log_app.command("verify-receipt")
def log_verify_receipt(
    file: Annotated[
        Path, typer.Argument(help="Receipt JSON file ('-' for stdin).", readable=False)
    ],
    log_key: Annotated[str, typer.Option("--log-key", help="The log's verifier key.")],
    witness_key: Annotated[
        list[str] | None, typer.Option("--witness-key", help="A witness verifier key (repeat).")
    ] = None,
    quorum: Annotated[
        int | None, typer.Option("--quorum", min=1, help="Witnesses required (default: all).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a receipt offline: no database, no network.  A receipt handed out before a
    checkpoint covered its event (a withdrawal or erasure receipt) verifies as pending: the
    log's signed entry and the event."""
    from credit_commons.core.errors import ValidationError
    from credit_commons.ledger.receipts import PendingReceipt, verify_any_receipt

    text = read_text_file(file, "the receipt file")
    try:
        receipt = json.loads(text)
    except ValueError as e:
        raise ValidationError("the receipt file is not JSON") from e
    result = verify_any_receipt(receipt, log_key, witness_key or [], quorum)
    if isinstance(result, PendingReceipt):
        pending = {
            "valid": True,
            "included": False,
            "origin": result.origin,
            "event_id": result.entry["id"],
            "event_type": result.entry["type"],
            "entry_signed": True,
            "event_checked": result.event_checked,
        }
        _emit(
            as_json,
            pending,
            f"valid, pending: {result.entry['type']} {result.entry['id']} is signed by "
            f"{result.origin}; no checkpoint covers it yet (refresh the receipt later)",
        )
        return
    data = {
        "valid": True,
        "included": True,
        "origin": result.checkpoint.origin,
        "size": result.checkpoint.size,
        "index": result.index,
        "event_id": result.entry["id"],
        "event_type": result.entry["type"],
        "witnesses": list(result.witnesses),
        "entry_signed": result.entry_signed,
        "event_checked": result.event_checked,
    }
    _emit(
        as_json,
        data,
        f"valid: {data['event_type']} {data['event_id']} is leaf {result.index} of "
        f"{result.checkpoint.origin} at size {result.checkpoint.size}"
        + (f", cosigned by {', '.join(result.witnesses)}" if result.witnesses else ""),
    )


@log_app.command("audit")
def log_audit(
    ctx: typer.Context,
    log_key: Annotated[
        list[str] | None,
        typer.Option(
            "--log-key",
            help="Verifier key to trust; repeat for a log continued under a new origin "
            "(default: this log's, every origin).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute the whole tree from stored entries and check every checkpoint."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from credit_commons.core.db import transaction
    from credit_commons.ledger import service as log_service
    from credit_commons.ledger.audit import audit_log
    from credit_commons.ledger.identity import log_identity

    with _runtime(ctx) as rt:
        # The recorded identity, so checkpoints signed before a change of public URL verify.
        vkey = log_key or log_identity(rt).vkeys
        # Read-only: the audit never takes the write lock (docs/log.md, "Auditing").
        with transaction(rt.read_sessions) as session:
            size, _ = log_service.log_state(session)
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=as_json,
            disable=as_json,
            console=_stderr_console(),
        ) as progress:
            task = progress.add_task("auditing", total=size)
            report = audit_log(rt.engine, vkey, lambda done: progress.update(task, completed=done))
    _emit(
        as_json,
        {
            "ok": True,
            "size": report.size,
            "root": base64.b64encode(report.root).decode(),
            "checkpoints": report.checkpoints,
        },
        f"ok: {report.size} leaves, {report.checkpoints} checkpoints match",
    )


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


# -- witness and anchors --------------------------------------------------------------------


@witness_app.command("serve")
def witness_serve(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="The witness's own state.", readable=False)
    ],
    name: Annotated[str, typer.Option("--name", help="Witness key name, e.g. witness.example/w1.")],
    log_key: Annotated[
        list[str], typer.Option("--log-key", help="Verifier key of a log to witness (repeat).")
    ],
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: sqlite in --data-dir.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 7380,
    as_json: JsonOption = False,
) -> None:
    """Run an independent witness with its own key and state (prints its verifier key)."""
    from credit_commons.ledger import witness_app as witness_program

    argv = ["--data-dir", str(data_dir), "--name", name, "--host", host, "--port", str(port)]
    for key in log_key:
        argv += ["--log-key", key]
    if database_url:
        argv += ["--database-url", database_url]
    del as_json  # the witness always prints its key as a JSON line; main() reads it for errors
    witness_program.serve(argv)


@anchor_app.command("status")
def anchor_status_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show anchor jobs: backend, checkpoint size, status, attempts."""
    from credit_commons.ledger.anchoring import anchor_status

    with _runtime(ctx) as rt:
        jobs = anchor_status(rt)
    lines = [
        f"{j['backend']:<6} size {j['size']:<10} {j['status']:<10} attempts {j['attempts']}"
        + (f" ({j['last_error']})" if j["last_error"] else "")
        for j in jobs
    ]
    _emit(as_json, {"anchors": jobs}, "\n".join(lines) if lines else "no anchors yet")


@anchor_app.command("deploy")
def anchor_deploy(
    ctx: typer.Context,
    rpc_url: Annotated[str, typer.Option("--rpc-url", help="EVM JSON-RPC endpoint.")],
    as_json: JsonOption = False,
) -> None:
    """Deploy the Anchor contract with COMMONS_ANCHOR_EVM_PRIVATE_KEY; prints its address."""
    from web3 import Web3

    from credit_commons.ledger.anchors.evm import deploy_anchor_contract

    key = _settings(ctx).anchor_evm_private_key
    if key is None:
        raise ConfigurationError("set COMMONS_ANCHOR_EVM_PRIVATE_KEY to the deploying account")
    web3 = Web3(Web3.HTTPProvider(rpc_url))
    address = deploy_anchor_contract(web3, key.get_secret_value())
    _emit(
        as_json,
        {"contract": address},
        f"Anchor contract at {address}; set COMMONS_ANCHOR_EVM_CONTRACT",
    )


# -- identities and privacy -------------------------------------------------------------------


def _operator() -> Any:
    from credit_commons.identity.service import Principal

    return Principal(_OPERATOR, "admin")


@identity_app.command("create")
def identity_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Full name.")],
    role: Annotated[list[str] | None, typer.Option("--role", help="A role (repeat).")] = None,
    phone: Annotated[str | None, typer.Option("--phone")] = None,
    email: Annotated[str | None, typer.Option("--email")] = None,
    identifier: Annotated[
        list[str] | None,
        typer.Option("--identifier", help="KIND=VALUE, e.g. pan=ABCPE1234F (repeat)."),
    ] = None,
    birth_date: Annotated[str | None, typer.Option("--birth-date", help="YYYY-MM-DD")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Two-letter state code.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Register an identity; prints its token and an access token (shown once)."""
    from credit_commons.core.db import transaction
    from credit_commons.core.errors import ValidationError
    from credit_commons.identity import service
    from credit_commons.identity.schemas import IdentityCreate

    identifiers = {}
    for item in identifier or []:
        kind, sep, value = item.partition("=")
        if not sep:
            raise ValidationError("--identifier takes KIND=VALUE", extra={"field": "identifier"})
        identifiers[kind] = value
    try:
        request = IdentityCreate.model_validate(
            {
                "roles": role or ["citizen"],
                "profile": {
                    k: v for k, v in {"name": name, "phone": phone, "email": email}.items() if v
                },
                "attributes": {
                    k: v for k, v in {"birth_date": birth_date, "state": state}.items() if v
                },
                "identifiers": identifiers,
            }
        )
    except pydantic.ValidationError as e:
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in e.errors()})
        raise ValidationError(f"invalid identity: {', '.join(fields)}") from e
    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        created = service.create_identity(session, rt, request, _operator())
    _emit(
        as_json,
        created,
        f"created {created['identity_token']}\naccess token: {created['access_token']}",
    )


@identity_app.command("show")
def identity_show(
    ctx: typer.Context,
    token: Annotated[str, typer.Argument(help="Identity token idt_….")],
    as_json: JsonOption = False,
) -> None:
    """Show an identity's metadata (no personal data)."""
    from credit_commons.core.db import transaction
    from credit_commons.identity import service

    with _runtime(ctx) as rt, transaction(rt.read_sessions) as session:
        data = service.get_identity(session, rt, _operator(), token)
    _emit(as_json, data, json.dumps(data, indent=2))


@identity_app.command("delegate")
def identity_delegate(
    ctx: typer.Context,
    delegator: Annotated[str, typer.Option("--from", help="Delegator identity token.")],
    delegatee: Annotated[str, typer.Option("--to", help="Delegatee identity token.")],
    kind: Annotated[
        str,
        typer.Option(
            "--type", help="parent_child, guardian_ward, business_owner or field_agent_assist."
        ),
    ],
    permission: Annotated[list[str], typer.Option("--permission", help="e.g. read:profile")],
    days: Annotated[int, typer.Option("--days", min=1, max=3650)] = 365,
    as_json: JsonOption = False,
) -> None:
    """Offer a delegation on the delegator's behalf (the delegatee must still accept)."""
    from credit_commons.core.db import transaction
    from credit_commons.core.errors import ValidationError
    from credit_commons.identity import delegations
    from credit_commons.identity.schemas import DelegationCreate

    try:
        request = DelegationCreate.model_validate(
            {
                "delegatee_token": delegatee,
                "type": kind,
                "permissions": permission,
                "expires_in_days": days,
            }
        )
    except pydantic.ValidationError as e:
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in e.errors()})
        raise ValidationError(f"invalid delegation: {', '.join(fields)}") from e
    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        data = delegations.create_delegation(session, rt, _operator(), delegator, request)
    _emit(as_json, data, f"offered {data['id']}; the delegatee must accept it")


authority_app = typer.Typer(
    help="Onboarding authorities: the banks and issuer desks that bind identifiers.",
    no_args_is_help=True,
)
identity_app.add_typer(authority_app, name="authority")


@authority_app.command("add")
def authority_add(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option("--kind", help="bank or issuer_desk.")],
    name: Annotated[str, typer.Option("--name", help="Who the authority is.")],
    lender: Annotated[
        str | None, typer.Option("--lender", help="A bank's lender client id lnd_….")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Designate an onboarding authority; an issuer desk's token is printed once."""
    from credit_commons.core.db import transaction
    from credit_commons.core.errors import NotFoundError, ValidationError
    from credit_commons.gateway import clients
    from credit_commons.identity import onboarding

    try:
        authority_kind = onboarding.AuthorityKind(kind)
    except ValueError as e:
        raise ValidationError("--kind is bank or issuer_desk", extra={"field": "kind"}) from e
    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        if lender is not None and clients.get_client(session, lender) is None:
            raise NotFoundError("no such lender client")
        data = onboarding.register_authority(
            session, rt, _operator(), kind=authority_kind, name=name, lender_client_id=lender
        )
    text = f"designated {data['authority_id']} ({data['kind']})"
    if "token" in data:
        text += f"\ndesk token: {data['token']}"
    _emit(as_json, data, text)


@authority_app.command("list")
def authority_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the onboarding authorities."""
    from credit_commons.core.db import transaction
    from credit_commons.identity import onboarding

    with _runtime(ctx) as rt, transaction(rt.read_sessions) as session:
        rows = onboarding.list_authorities(session, _operator())
    text = "\n".join(
        f"{r['authority_id']}  {r['kind']:<11}  {'active' if r['active'] else 'inactive':<8}  "
        f"{r['name']}"
        for r in rows
    )
    _emit(as_json, rows, text or "no onboarding authorities")


@authority_app.command("deactivate")
def authority_deactivate(
    ctx: typer.Context,
    authority_id: Annotated[str, typer.Argument(help="Authority id oba_….")],
    as_json: JsonOption = False,
) -> None:
    """Stop an authority from binding (its earlier bindings stay, naming it)."""
    from credit_commons.core.db import transaction
    from credit_commons.identity import onboarding

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        data = onboarding.set_authority_active(session, rt, _operator(), authority_id, active=False)
    _emit(as_json, data, f"deactivated {authority_id}")


@authority_app.command("token")
def authority_token(
    ctx: typer.Context,
    authority_id: Annotated[str, typer.Argument(help="Issuer desk id oba_….")],
    as_json: JsonOption = False,
) -> None:
    """Issue a new bearer token for an issuer desk (shown once; valid 30 days)."""
    from credit_commons.core.db import transaction
    from credit_commons.identity import onboarding

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        data = onboarding.issue_desk_token(session, rt, _operator(), authority_id)
    _emit(as_json, data, data["token"])


@identity_app.command("bind")
def identity_bind(
    ctx: typer.Context,
    token: Annotated[str, typer.Argument(help="Identity token idt_….")],
    authority_id: Annotated[
        str, typer.Option("--authority", help="The issuer desk attesting it (oba_…).")
    ],
    identifier: Annotated[str, typer.Option("--identifier", help="KIND=VALUE, e.g. pan=…")],
    evidence: Annotated[
        str, typer.Option("--evidence", help="The desk's reference to what it checked.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Bind an identifier at an issuer desk's console (a bank binds through its API)."""
    from credit_commons.core.db import transaction
    from credit_commons.core.errors import NotFoundError, ValidationError
    from credit_commons.identity import onboarding
    from credit_commons.identity.models import OnboardingAuthorityRow
    from credit_commons.identity.schemas import IdentifierBinding

    kind, sep, value = identifier.partition("=")
    if not sep:
        raise ValidationError("--identifier takes KIND=VALUE", extra={"field": "identifier"})
    try:
        request = IdentifierBinding.model_validate(
            {"identity_token": token, "kind": kind, "value": value, "evidence_ref": evidence}
        )
    except pydantic.ValidationError as e:
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in e.errors()})
        raise ValidationError(f"invalid binding: {', '.join(fields)}") from e
    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        row = session.get(OnboardingAuthorityRow, authority_id)
        if row is None or row.kind != onboarding.AuthorityKind.ISSUER_DESK:
            raise NotFoundError("no such issuer desk")
        authority = onboarding.authority_for(session, row.principal)
        data = onboarding.bind_identifier(session, rt, authority, request)
    _emit(as_json, data, f"{data['kind']} bound to {token} by {authority_id}")


@privacy_app.command("export")
def privacy_export(
    ctx: typer.Context,
    token: Annotated[str, typer.Argument(help="Identity token idt_….")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the JSON here.", readable=False)
    ] = None,
    pdf: Annotated[
        Path | None, typer.Option("--pdf", help="Also write it as a PDF here.", readable=False)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Export everything held on a subject (JSON, and optionally PDF)."""
    from credit_commons.core.db import transaction
    from credit_commons.privacy.export import export_subject
    from credit_commons.privacy.pdf import render_export_pdf

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        data = export_subject(session, rt, _operator(), token)
        generated_at = rt.clock.now()
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    pdf_note = f"PDF written to {pdf} (mode 0600)"
    if pdf is not None:
        fd = os.open(pdf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(render_export_pdf(data, generated_at=generated_at))
    if out is not None:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        written = {"written": str(out)} | ({"pdf": str(pdf)} if pdf is not None else {})
        message = f"export written to {out} (mode 0600)"
        _emit(as_json, written, message + (f"; {pdf_note}" if pdf is not None else ""))
    else:
        typer.echo(text)
        if pdf is not None:  # stdout holds the export itself: say where the PDF went aside
            typer.echo(pdf_note, err=True)


@privacy_app.command("erase")
def privacy_erase(
    ctx: typer.Context,
    token: Annotated[str, typer.Argument(help="Identity token idt_….")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Erase a subject: destroy their keys, links and tokens (cannot be undone)."""
    from credit_commons.core.db import transaction
    from credit_commons.core.errors import ValidationError
    from credit_commons.privacy.erasure import erase_subject

    if not yes:
        raise ValidationError("erasure cannot be undone; add --yes to confirm")
    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        data = erase_subject(session, rt, _operator(), token)
    _emit(
        as_json,
        data,
        f"erased {token}; event {data['event_id']}; epoch {data['epoch']}: unreadable in "
        f"every backup once the epoch closes, due {data['unreadable_in_backups_after']}",
    )


@privacy_app.command("close-epoch")
def privacy_close_epoch(
    ctx: typer.Context,
    batch: Annotated[int, typer.Option("--batch", min=1, max=100_000)] = 1000,
    as_json: JsonOption = False,
) -> None:
    """Close the erasure epoch now: rotate the master key, rewrap every subject key, destroy
    the old version (resumable: a close that was interrupted is finished first)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from credit_commons.privacy.epochs import close_epoch

    with (
        _runtime(ctx) as rt,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            disable=as_json,
            console=_stderr_console(),
        ) as progress,
    ):
        task = progress.add_task("rewrapping subject keys", total=None)
        report = close_epoch(
            rt,
            batch=batch,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    data = report.as_json()
    _emit(
        as_json,
        data,
        f"epoch {report.epoch} {report.state}: {report.erasures} erasures, "
        f"{report.rewrapped} subject keys rewrapped to master version {report.kek_version}, "
        f"versions {report.destroyed_versions} destroyed",
    )


@privacy_app.command("restore")
def privacy_restore(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="Database URL of the current key material: the live database, or a backup "
            "newer than the last erasure epoch.",
        ),
    ],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: COMMONS_DATABASE_URL is the restored copy.")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, max=100_000)] = 1000,
    as_json: JsonOption = False,
) -> None:
    """After restoring a backup into COMMONS_DATABASE_URL: take its subject keys from the
    current key material and apply the erasures made since, so every living subject opens
    and no erased one does (docs/operations.md)."""
    from credit_commons.core.db import dispose_engine, make_engine, make_sessionmaker
    from credit_commons.core.errors import ValidationError
    from credit_commons.privacy.restore import restore_from

    if not yes:
        raise ValidationError(
            "restore rewrites the subject keys of COMMONS_DATABASE_URL (the restored copy) "
            "from --from (the current key material) and erases again; add --yes to confirm"
        )
    with _runtime(ctx) as rt:
        engine = make_engine(source)
        try:
            counts = restore_from(rt, make_sessionmaker(engine), batch=batch)
        finally:
            dispose_engine(engine)
    _emit(
        as_json,
        counts,
        f"subject keys: {counts['keys_updated']} taken from the current key material, "
        f"{counts['keys_deleted']} deleted; {counts['erasures_applied']} erasures applied again",
    )


@privacy_app.command("epochs")
def privacy_epochs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
    as_json: JsonOption = False,
) -> None:
    """List the newest erasure epochs: open, closing or closed, and when each is due."""
    from credit_commons.core.db import transaction
    from credit_commons.privacy.epochs import list_epochs

    with _runtime(ctx) as rt, transaction(rt.read_sessions) as session:
        rows = list_epochs(session, rt, limit)
    _emit(
        as_json,
        rows,
        "\n".join(
            f"{r['epoch']:>6} {r['state']:<8} erasures {r['erasures']:<5} opened {r['opened_at']}"
            f" due {r['due_at']}" + (f" closed {r['closed_at']}" if r["closed_at"] else "")
            for r in rows
        ),
    )


retention_app = typer.Typer(help="Retention of personal data.", no_args_is_help=True)
privacy_app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Delete what is past its retention window now (the worker does it hourly)."""
    from credit_commons.core.db import transaction
    from credit_commons.privacy.retention import run_retention

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        counts = run_retention(session, rt)
    _emit(as_json, counts, ", ".join(f"{k}: {v} deleted" for k, v in counts.items()))


@admin_app.command("token")
def admin_token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who the token is for.")],
    as_json: JsonOption = False,
) -> None:
    """Issue an administrator bearer token (shown once; valid 30 days)."""
    from credit_commons.core.db import transaction
    from credit_commons.identity import service

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        token, expires = service.issue_admin_token(session, rt, name)
    _emit(as_json, {"token": token, "expires_at": expires}, token)


# -- issuer --------------------------------------------------------------------------------


@issuer_type_app.command("list")
def issuer_type_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the credential types in the catalogue."""
    from credit_commons.core.db import transaction
    from credit_commons.issuer import service as issuer_service

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        types = [t.as_json() for t in issuer_service.list_types(session, rt)]
    _emit(as_json, types, "\n".join(f"{t['name']:<32} {t['vct']}" for t in types))


@issuer_type_app.command("show")
def issuer_type_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Type name.")],
    as_json: JsonOption = False,
) -> None:
    """Show one credential type (schema and disclosable paths)."""
    from credit_commons.core.db import transaction
    from credit_commons.issuer import service as issuer_service

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        data = issuer_service.get_type(session, rt, name).as_json()
    _emit(as_json, data, json.dumps(data, indent=2))


@issuer_type_app.command("put")
def issuer_type_put(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A JSON type definition.", readable=False)],
    as_json: JsonOption = False,
) -> None:
    """Add or replace a credential type from a JSON file (name, vct, schema, disclosable)."""
    from credit_commons.core.db import transaction
    from credit_commons.core.errors import ValidationError
    from credit_commons.issuer import service as issuer_service

    try:
        definition = json.loads(read_text_file(file, "the type definition"))
    except ValueError as e:
        raise ValidationError("the type definition is not a JSON file") from e
    if not isinstance(definition, dict):
        raise ValidationError("the type definition must be a JSON object")
    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        created = issuer_service.put_type(session, rt, _operator(), definition)
    _emit(as_json, created.as_json(), f"stored {created.name} ({created.vct})")


@issuer_app.command("issue-batch")
def issuer_issue_batch(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(help="JSON lines: {type, subject, claims, holder_jwk}.", readable=False),
    ],
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Credentials per transaction.")] = 500,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the results here (default stdout).", readable=False),
    ] = None,
    skip: Annotated[
        int, typer.Option(min=0, help="Skip the first N lines (already committed: resume).")
    ] = 0,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=32,
            help="Processes that build the SD-JWTs while this one writes (0: none; "
            "default: one fewer than the CPUs, at most 2; none for a --batch below 100).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Issue credentials from a JSON-lines file, --batch per committed transaction.

    Each result is written as a JSON line ``{"line", "credential_id", "credential", ...}``
    as soon as its transaction commits; progress goes to stderr.  On an error nothing of the
    failing transaction is kept, and stderr says which lines were committed and how to
    resume (``--skip``); with --json the error is a problem+json line.  Results are always
    JSON lines."""
    from credit_commons.issuer import batch as issuer_batch
    from credit_commons.issuer.build_pool import BuildPool, default_workers

    del as_json  # read by main() for the error format

    count = default_workers() if workers is None else workers
    sink = out.open("a" if skip else "w", encoding="utf-8") if out is not None else sys.stdout
    try:
        with (
            _runtime(ctx) as rt,
            file.open(encoding="utf-8") as lines,
            contextlib.ExitStack() as stack,
        ):
            # The workers start with the first batch that needs them (MIN_JOBS or more).
            builders = stack.enter_context(BuildPool(count)) if count else None
            freeze_startup_heap()
            issuer_batch.issue_lines(
                rt,
                _operator(),
                lines,
                batch=batch,
                skip=skip,
                write=lambda line: (sink.write(line + "\n"), sink.flush()),
                progress=lambda message: typer.echo(message, err=True),
                builders=builders,
            )
    except OSError as e:
        from credit_commons.core.files import path_error

        # The lines or the results file: the error names which path.
        raise path_error(e) from e
    finally:
        if out is not None:
            sink.close()


def _status_command(action: str, what: str) -> None:
    # One command per status change, calling the same service function as the HTTP route.
    def command(
        ctx: typer.Context,
        credential_id: Annotated[str, typer.Argument(help="crd_…")],
        as_json: JsonOption = False,
    ) -> None:
        from credit_commons.core.db import transaction
        from credit_commons.issuer import credentials

        with _runtime(ctx) as rt, transaction(rt.sessions) as session:
            data = credentials.change_status(
                session, rt, _operator(), credential_id, credentials.StatusAction(action)
            )
        _emit(as_json, data, f"{credential_id}: {data['status']}")

    command.__doc__ = what
    issuer_app.command(action)(command)


for _action, _what in (
    ("revoke", "Revoke a valid or suspended credential (final: it is never valid again)."),
    ("suspend", "Suspend a valid credential (reversible with reinstate)."),
    ("reinstate", "Reinstate a suspended credential (a revoked one cannot be)."),
):
    _status_command(_action, _what)


issuer_trust_app = typer.Typer(help="The trust list: issuers whose credentials verify here.")
issuer_app.add_typer(issuer_trust_app, name="trust")


@issuer_trust_app.command("add")
def issuer_trust_add(
    ctx: typer.Context,
    issuer: Annotated[str, typer.Argument(help="An https issuer URL, a did:web or a did:key.")],
    as_json: JsonOption = False,
) -> None:
    """Trust an issuer (recorded as issuer.trusted)."""
    from credit_commons.core.db import transaction
    from credit_commons.issuer import trust

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        added = trust.add_trusted_issuer(session, rt, _operator(), issuer)
    _emit(as_json, added, f"trusted {added['issuer']} ({added['kind']}, {added['id']})")


@issuer_trust_app.command("list")
def issuer_trust_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the trusted issuers."""
    from credit_commons.core.db import transaction
    from credit_commons.issuer import trust

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        listed = trust.list_trusted_issuers(session, rt, _operator())
    _emit(as_json, listed, "\n".join(f"{t['id']}  {t['kind']:<8} {t['issuer']}" for t in listed))


@issuer_trust_app.command("remove")
def issuer_trust_remove(
    ctx: typer.Context,
    issuer: Annotated[str, typer.Argument(help="The issuer, or its entry id (tis_...).")],
    as_json: JsonOption = False,
) -> None:
    """Stop trusting an issuer (recorded as issuer.untrusted)."""
    from credit_commons.core.db import transaction
    from credit_commons.issuer import trust

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        removed = trust.remove_trusted_issuer(session, rt, _operator(), issuer)
    _emit(as_json, removed, f"no longer trusted: {removed['issuer']}")


# -- wallet --------------------------------------------------------------------------------

_passphrase = wallet_passphrase


@wallet_app.command("init")
def wallet_init(
    wallet: WalletOption = Path("wallet.json"),
    key_type: Annotated[
        KeyTypeChoice, typer.Option("--type", help="Holder key type.")
    ] = KeyTypeChoice.ED25519,
    as_json: JsonOption = False,
) -> None:
    """Create a wallet with a holder key, encrypted under a passphrase
    (COMMONS_WALLET_PASSPHRASE, or asked)."""
    from credit_commons.keys.algorithms import KeyType
    from credit_commons.keys.did_key import encode_did_key
    from credit_commons.wallet.store import Wallet

    kt = KeyType.ED25519 if key_type is KeyTypeChoice.ED25519 else KeyType.P256
    created = Wallet.create(wallet, _passphrase(confirm=True), kt)
    did = encode_did_key(created.holder_key.public_key)
    _emit(
        as_json,
        {"wallet": str(wallet), "holder_did": did},
        f"wallet {wallet} created; holder {did}",
    )


@wallet_app.command("accept-offer")
def wallet_accept_offer(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(help="An openid-credential-offer:// URI.")],
    tx_code: Annotated[
        str | None, typer.Option("--tx-code", help="The issuer's one-time code.")
    ] = None,
    wallet: WalletOption = Path("wallet.json"),
    as_json: JsonOption = False,
) -> None:
    """Receive a credential through OID4VCI (pre-authorized code flow)."""
    from credit_commons.wallet.cli import wallet_fetcher
    from credit_commons.wallet.client import accept_offer
    from credit_commons.wallet.store import Wallet

    opened = Wallet.open(wallet, _passphrase())
    fetcher = wallet_fetcher(_settings(ctx))
    try:
        local_id = accept_offer(opened, uri, tx_code=tx_code, fetcher=fetcher)
    finally:
        fetcher.close()
    stored = opened.credential(local_id)
    _emit(
        as_json,
        {"id": local_id, "issuer": stored["issuer"], "configuration": stored["configuration"]},
        f"received {stored['configuration']} from {stored['issuer']} as {local_id}",
    )


@wallet_app.command("list")
def wallet_list(wallet: WalletOption = Path("wallet.json"), as_json: JsonOption = False) -> None:
    """List the credentials in the wallet."""
    from credit_commons.wallet.store import Wallet

    opened = Wallet.open(wallet, _passphrase())
    rows = [
        {k: c[k] for k in ("id", "issuer", "configuration", "received_at")}
        for c in opened.contents["credentials"]
    ]
    _emit(
        as_json,
        rows,
        "\n".join(f"{r['id']:<4} {r['configuration']:<28} {r['issuer']}" for r in rows) or "empty",
    )


@wallet_app.command("present")
def wallet_present(
    credential_id: Annotated[str, typer.Argument(help="Local credential id (see list).")],
    nonce: Annotated[str, typer.Option("--nonce", help="The verifier's nonce.")],
    aud: Annotated[str, typer.Option("--aud", help="The verifier (audience).")],
    disclose: Annotated[
        str, typer.Option("--disclose", help="Comma-separated claim paths, e.g. income_bracket.")
    ] = "",
    wallet: WalletOption = Path("wallet.json"),
    as_json: JsonOption = False,
) -> None:
    """Print an SD-JWT+KB presentation disclosing only the chosen claims."""
    from credit_commons.wallet.client import make_presentation
    from credit_commons.wallet.store import Wallet

    opened = Wallet.open(wallet, _passphrase())
    paths = {"/" + p.strip().lstrip("/") for p in disclose.split(",") if p.strip()}
    text = make_presentation(opened, credential_id, audience=aud, nonce=nonce, disclose=paths)
    _emit(as_json, {"presentation": text}, text)


# -- vault ---------------------------------------------------------------------------------


@vault_app.command("status")
def vault_status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the KMS, its master-key versions and subject keys per version."""
    from credit_commons.core.db import transaction

    with _runtime(ctx) as rt, transaction(rt.read_sessions) as session:
        status = rt.vault.status(session)
    by_version = status["subject_keys_by_version"]
    _emit(
        as_json,
        status,
        f"KMS {status['kek_id']}: versions {status['versions']}, current "
        f"{status['current_version']}, min decrypt {status['min_decrypt_version']}; "
        f"subject keys by version {by_version}",
    )


@vault_app.command("rotate")
def vault_rotate(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Add a new master-key version; new subject keys are wrapped with it."""
    with _runtime(ctx) as rt:
        version = rt.vault.kms.rotate()
    _emit(
        as_json,
        {"current_version": version},
        f"master key now at version {version}; run `commons vault rewrap` to move old keys",
    )


@vault_app.command("rewrap")
def vault_rewrap(
    ctx: typer.Context,
    batch: Annotated[int, typer.Option("--batch", min=1, max=100_000)] = 1000,
    retire: Annotated[
        bool,
        typer.Option("--retire", help="Afterwards refuse older master versions for decryption."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Rewrap every subject key under the newest master version (resumable)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with _runtime(ctx) as rt:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            disable=as_json,
            console=_stderr_console(),
        ) as progress:
            task = progress.add_task("rewrapping", total=None)
            report = rt.vault.rewrap(
                rt.sessions,
                batch=batch,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        if retire and report.remaining == 0:
            rt.vault.kms.set_min_decrypt_version(report.target_version)
        min_version = rt.vault.kms.min_decrypt_version
    _emit(
        as_json,
        {
            "rewrapped": report.rewrapped,
            "remaining": report.remaining,
            "target_version": report.target_version,
            "min_decrypt_version": min_version,
        },
        f"rewrapped {report.rewrapped} subject keys to version {report.target_version}"
        + (f"; {report.remaining} remain" if report.remaining else ""),
    )


@vault_app.command("init-hsm")
def vault_init_hsm(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Create master key v1 and the pepper inside the configured PKCS#11 token (once)."""
    from credit_commons.runtime import build_kms

    settings = _settings(ctx)
    if settings.kms != "pkcs11":
        raise ConfigurationError("init-hsm needs COMMONS_KMS=pkcs11")
    with _runtime(ctx) as rt:
        kms = build_kms(settings, rt.master, create_missing=True)
        data = {
            "kek_id": kms.kek_id,
            "current_version": kms.current_version(),
            "pepper_fingerprint": kms.pepper_fingerprint(),
        }
    _emit(as_json, data, f"HSM ready: {data['kek_id']} v{data['current_version']}")


# -- db ------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Apply every pending schema migration."""
    from credit_commons.core.db import transaction
    from credit_commons.core.migrate import upgrade
    from credit_commons.privacy.pepper import check_peppers

    with _runtime(ctx) as runtime:
        revision = upgrade(runtime.engine)
        backend = runtime.engine.dialect.name
        with transaction(runtime.sessions) as session:
            check_peppers(session, runtime)
    _emit(
        as_json,
        {"revision": revision, "database": backend},
        f"database ({backend}) at revision {revision}",
    )


@db_app.command("current")
def db_current(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the schema revision of the database and of this code."""
    from credit_commons.core.migrate import current_revision, head_revision

    with _runtime(ctx) as runtime:
        current = current_revision(runtime.engine)
    head = head_revision()
    _emit(
        as_json,
        {"current": current, "head": head, "up_to_date": current == head},
        f"database at {current}, code at {head}" + ("" if current == head else " (run upgrade)"),
    )


# -- keys ----------------------------------------------------------------------------------


def _key_row(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "version": info.version,
        "key_type": str(info.key_type),
        "alg": info.key_type.jose_alg,
        "kid": info.kid,
        "backend": info.backend,
        "created_at": info.created_at.isoformat(),
    }


@keys_app.command("init-master")
def keys_init_master(
    ctx: typer.Context,
    production: Annotated[
        bool, typer.Option("--production", help="Mark the key for production use.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Create the master key file (0600) named by COMMONS_MASTER_KEY_FILE."""
    from credit_commons.core.clock import SystemClock
    from credit_commons.keys.master import MasterKeyring

    path = _settings(ctx).resolved_master_key_file
    ring = MasterKeyring.create(path, development=not production, now=SystemClock().now())
    _emit(
        as_json,
        {"path": str(path), "development": ring.development, "version": ring.current_version},
        f"created {'production' if production else 'development'} master key {path}",
    )


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Key name, e.g. issuer-main.")],
    key_type: Annotated[
        KeyTypeChoice, typer.Option("--type", help="Key type.")
    ] = KeyTypeChoice.ED25519,
    as_json: JsonOption = False,
) -> None:
    """Create a signing key."""
    from credit_commons.core.db import transaction
    from credit_commons.keys import service
    from credit_commons.keys.algorithms import KeyType

    kt = KeyType.ED25519 if key_type is KeyTypeChoice.ED25519 else KeyType.P256
    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        info = service.create_key(
            session,
            rt.key_store,
            rt.clock,
            name=name,
            key_type=kt,
            actor=rt.operator_actor(),
            objects=rt.objects,
        )
    _emit(as_json, _key_row(info), f"created {info.name} v{info.version} ({info.key_type})")


@keys_app.command("rotate")
def keys_rotate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Key name.")],
    as_json: JsonOption = False,
) -> None:
    """Add a new version of a key; older versions keep verifying."""
    from credit_commons.core.db import transaction
    from credit_commons.keys import service

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        info = service.rotate_key(
            session,
            rt.key_store,
            rt.clock,
            name=name,
            actor=rt.operator_actor(),
            objects=rt.objects,
        )
    _emit(as_json, _key_row(info), f"rotated {info.name} to v{info.version}")


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help="Only this key.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List every key version."""
    from credit_commons.core.db import transaction
    from credit_commons.keys import service

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        rows = [_key_row(v) for v in service.list_keys(session, rt.key_store, name)]
    lines = [f"{r['name']:<24} v{r['version']:<3} {r['key_type']:<8} {r['kid']}" for r in rows]
    _emit(as_json, {"keys": rows}, "\n".join(lines) if lines else "no keys")


@keys_app.command("export-public")
def keys_export_public(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Key name.")],
    as_json: JsonOption = False,
) -> None:
    """Print the public JWK Set of every version of a key, and the newest key's did:key."""
    from credit_commons.core.db import transaction
    from credit_commons.keys import service

    with _runtime(ctx) as rt, transaction(rt.sessions) as session:
        jwks = service.public_jwks(session, rt.key_store, name)
    _emit(as_json, jwks, json.dumps({"keys": jwks["keys"]}, indent=2) + f"\n{jwks['did']}")


# -- did -----------------------------------------------------------------------------------


@did_app.command("resolve")
def did_resolve(
    ctx: typer.Context,
    did: Annotated[str, typer.Argument(help="A did:key or did:web.")],
    as_json: JsonOption = False,
) -> None:
    """Resolve a DID to its DID document."""
    from credit_commons.core.net import OutboundFetcher
    from credit_commons.keys.did_web import DidResolver

    settings = _settings(ctx)
    fetcher = OutboundFetcher(
        allow_private=settings.insecure_allow_private_network,
        allow_http=settings.insecure_allow_http,
    )
    try:
        document = DidResolver(fetcher).resolve(did)
    finally:
        fetcher.close()
    _emit(as_json, document, json.dumps(document, indent=2))


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


if __name__ == "__main__":  # pragma: no cover
    run()
