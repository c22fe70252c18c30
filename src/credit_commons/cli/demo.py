"""``commons demo``: the whole story on the embedded defaults (the story is
:mod:`credit_commons.demo`)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import holder
from credit_commons.core.errors import UnavailableError
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.demo import bound_socket, run_story, serve_in_thread
from credit_commons.gateway.app import create_app
from credit_commons.ledger.identity import log_identity
from credit_commons.runtime import Runtime

__all__ = ["app", "demo"]

app = holder()


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
        settings = _own_settings(root, port)

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


def _own_settings(root: Path, port: int) -> Settings:
    # Its own state only: an explicit data directory locates the database, key file and
    # anchor journal (whatever COMMONS_DATABASE_URL and the like say), and nothing
    # configured outside is reached: no HSM, chain, witness or shared Redis.
    return Settings(
        data_dir=root / "var",
        public_url=f"http://127.0.0.1:{port}",
        env="development",
        log_origin=None,
        kms="local",
        anchor_backends=["file"],
        log_witnesses=[],
        redis_url=None,
    )
