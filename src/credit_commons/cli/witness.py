"""``commons witness …``: an independent log witness with its own key and state
(tlog-witness)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, group
from credit_commons.gateway import witness_app as witness_program

__all__ = ["app"]

app = group("witness", "An independent log witness (tlog-witness).")


@app.command("serve")
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
    argv = ["--data-dir", str(data_dir), "--name", name, "--host", host, "--port", str(port)]
    for key in log_key:
        argv += ["--log-key", key]
    if database_url:
        argv += ["--database-url", database_url]
    del as_json  # the witness always prints its key as a JSON line; main() reads it for errors
    witness_program.serve(argv)
