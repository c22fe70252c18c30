"""``commons wallet serve``: the wallet's local HTTP server for apps on the holder's device
(docs/wallet.md "The local server"; ``wallet/server.py``).

The passphrase is asked once (or ``COMMONS_WALLET_PASSPHRASE``) and the wallet stays
unlocked for the process's lifetime only.  A bearer token is drawn at start and written,
mode 0600, to the token file (removed at exit); the token itself is never printed or logged.
"""

from __future__ import annotations

import secrets
import signal
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from credit_commons.cli.support import JsonOption, emit, settings, table
from credit_commons.cli.wallet_platform import UrlOption, WalletOption, passphrase, wallet_fetcher
from credit_commons.core.errors import ValidationError
from credit_commons.core.files import write_private
from credit_commons.core.logging import configure_logging
from credit_commons.wallet.server import WalletServerConfig, create_wallet_app, require_loopback
from credit_commons.wallet.store import Wallet
from credit_commons.wallet.threshold import ThresholdProver

__all__ = ["proofs", "serve"]


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(help="Loopback address to listen on (127.0.0.1, ::1, localhost).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8765,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="Where to write the bearer token (mode 0600; default: the wallet file's "
            "name with .token).",
            dir_okay=False,
        ),
    ] = None,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-origin",
            help="A browser origin allowed to call the server (repeat); none by default.",
        ),
    ] = None,
    rate: Annotated[int, typer.Option(help="Requests allowed a minute.", min=1, max=100_000)] = 120,
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
) -> None:
    """Serve the wallet to local apps: POST /v1/threshold-proof (seed 004's "score ≥ θ" in
    zero knowledge) and GET /v1/scores, on a loopback address, behind a bearer token."""
    require_loopback(host)
    for origin in allow_origin or []:
        if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
            raise ValidationError(f"--allow-origin {origin} is not an origin (scheme://host)")
    opened = Wallet.open(wallet, passphrase())
    base = url or opened.platform.url
    if not base:
        raise ValidationError(
            "the wallet does not know which platform to use",
            hint="pass --url https://… once (or set COMMONS_WALLET_URL)",
        )
    loaded = settings(ctx)
    fetcher = wallet_fetcher(loaded)
    fetcher.check_url(base)
    token = secrets.token_urlsafe(32)
    path = token_file or wallet.with_name(wallet.name + ".token")
    write_private(path, token.encode())
    config = WalletServerConfig(
        token=token, allowed_origins=frozenset(allow_origin or []), rate=rate
    )
    configure_logging(loaded.log_level)
    try:
        with fetcher.http_client(timeout=15) as http:
            prover = ThresholdProver(opened, base, fetcher=fetcher, http=http)
            app = create_wallet_app(prover, config)
            shown = f"[{host}]" if ":" in host else host
            typer.echo(
                f"wallet {opened.holder_did} served on http://{shown}:{port} for {base}; "
                f"bearer token in {path}"
            )
            server = uvicorn.Server(
                uvicorn.Config(
                    app,
                    host=host,
                    port=port,
                    lifespan="off",
                    access_log=False,
                    log_level="warning",
                    server_header=False,
                )
            )
            # uvicorn stops on SIGTERM and raises it again once stopped: end through the
            # finally below (the token file removed), not by the default action.
            signal.signal(signal.SIGTERM, _exit_on_signal)
            server.run()
    finally:
        path.unlink(missing_ok=True)
        fetcher.close()


def proofs(wallet: WalletOption = Path("wallet.json"), as_json: JsonOption = False) -> None:
    """List the threshold proofs asked of `commons wallet serve`: when, what, to whom, and
    what came of it (oldest first)."""
    history = Wallet.open(wallet, passphrase()).proof_history
    text = table(
        history,
        [("at", "AT"), ("ctx", "CTX"), ("threshold", "THRESHOLD"), ("audience", "AUDIENCE"),
         ("outcome", "OUTCOME")],
    )  # fmt: skip
    emit(as_json, history, text if history else "no proofs asked")
