"""``commons serve``: the HTTP API, with the log worker in the same process by default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from credit_commons import __version__
from credit_commons.cli.log import warn_if_diverged
from credit_commons.cli.support import JsonOption, holder, settings
from credit_commons.core.errors import CommonsError, ValidationError
from credit_commons.core.logging import configure_logging
from credit_commons.core.settings import Settings
from credit_commons.core.tracing import start_tracing
from credit_commons.gateway.app import create_app, schema_gate, startup_checks
from credit_commons.gateway.serving import (
    TlsFiles,
    serve_options,
    serve_workers,
    tls_options,
    workers_warnings,
)
from credit_commons.jobs import default_steps
from credit_commons.ledger.identity import LogIdentity
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime

__all__ = ["app", "serve"]

app = holder()

_CertFileOption = Annotated[
    Path | None,
    typer.Option(
        help="Serve HTTPS with this certificate (PEM, the chain after it); with --ssl-keyfile.",
        exists=True,
        dir_okay=False,
    ),
]
_KeyFileOption = Annotated[
    Path | None,
    typer.Option(help="The private key (PEM) of --ssl-certfile.", exists=True, dir_okay=False),
]


def _tls_files(certfile: Path | None, keyfile: Path | None) -> TlsFiles | None:
    # The certificate and its key, given together, or plain HTTP.
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        raise ValidationError("--ssl-certfile and --ssl-keyfile go together")
    return TlsFiles(certfile, keyfile)


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
    ssl_certfile: _CertFileOption = None,
    ssl_keyfile: _KeyFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Serve the HTTP API (logs are JSON lines on stderr).

    Without COMMONS_PUBLIC_URL the public URL is this server's own address (https with
    --ssl-certfile); a public URL that names this machine on another port is reported at
    start-up."""
    import uvicorn  # deferred: ~100 ms, wanted only once a server runs  # noqa: PLC0415

    tls = _tls_files(ssl_certfile, ssl_keyfile)
    base = settings(ctx)
    config = base.listening_on(host or base.host, port or base.port, tls=tls is not None)
    configure_logging(config.log_level)
    start_tracing(config.tracing, version=__version__)  # a no-op unless OTEL_* configure it
    warnings = workers_warnings(config, workers)
    disagreement = config.public_url_disagreement()
    if disagreement:
        warnings.append(f"{disagreement}; links will point there")
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    rt = Runtime.build(config)
    try:
        # Refusals (a changed pepper, a disagreeing COMMONS_LOG_ORIGIN) before serving, so
        # they print as one line with their exit code instead of a failed lifespan.
        gate = schema_gate(rt)
        identity = startup_checks(rt, gate)
        application = (
            create_app(config, runtime=rt, run_worker=worker, freeze_heap=True)
            if workers == 1
            else None
        )
    except BaseException:
        rt.close()
        raise
    origin = identity.origin if identity is not None else None
    _warn_of_the_database(rt, identity, gate.refusal(), worker=worker)
    _announce(config, origin, workers, as_json, tls=tls is not None)
    if application is not None:
        uvicorn.run(
            application,
            host=config.host,
            port=config.port,
            **serve_options(config),
            **tls_options(tls),
        )
        return
    # Several workers: this process supervises them and runs the one log worker.
    try:
        serve_workers(
            config,
            workers,
            log_worker=_log_worker(rt) if worker else None,
            tls=tls,
        )
    finally:
        rt.close()


def _warn_of_the_database(
    rt: Runtime, identity: LogIdentity | None, refusal: CommonsError, *, worker: bool
) -> None:
    # A database that does not continue the published log (cli/log.py), or one not migrated
    # yet (or migrated by a newer version, or not readable by this role): the server starts
    # all the same (a deployment may migrate it meanwhile), and says what it will answer
    # until then, and what ends it (the refusal's detail names it).
    if identity is not None:
        warn_if_diverged(rt)
        return
    waits = " (and the log worker waits)" if worker else ""
    typer.echo(
        "warning: the database's schema is not this version's: every API route answers "
        f"503 {refusal.code}{waits}: {refusal.detail}",
        err=True,
    )


def _log_worker(rt: Runtime) -> LogWorker:
    # The log worker a supervisor of several processes runs, waiting for the migration.
    return LogWorker(rt, steps=default_steps(rt), ready=schema_gate(rt).migrated)


def _announce(
    config: Settings, origin: str | None, workers: int, as_json: bool, *, tls: bool
) -> None:
    # One line saying where the API listens, before it starts serving.
    listening = f"{'https' if tls else 'http'}://{config.host}:{config.port}"
    if as_json:
        line = {
            "serving": listening,
            "public_url": config.public_url,
            "log_origin": origin,
            "workers": workers,
        }
        typer.echo(json.dumps(line))
    else:
        typer.echo(
            f"serving on {listening}; public URL {config.public_url}"
            + (f"; log origin {origin}" if origin else "")
            + (f"; {workers} worker processes" if workers > 1 else "")
        )
