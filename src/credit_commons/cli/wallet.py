"""``commons wallet …``: the holder's wallet — the local commands (create, receive,
list, present) here, and what it does with a platform (``cli/wallet_platform.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, KeyTypeChoice, emit, group, settings
from credit_commons.cli.wallet_platform import (
    WalletOption,
    consent_app,
    history,
    passphrase,
    privacy_app,
    receipts_app,
    register,
    rotate_key,
    wallet_fetcher,
)
from credit_commons.keys.did_key import encode_did_key
from credit_commons.wallet.client import accept_offer, make_presentation
from credit_commons.wallet.store import Wallet

__all__ = ["app"]

app = group("wallet", "The holder's wallet.")
app.command("register")(register)
app.add_typer(consent_app, name="consent")
app.command("history")(history)
app.add_typer(privacy_app, name="privacy")
app.add_typer(receipts_app, name="receipts")
app.command("rotate-key")(rotate_key)


@app.command("init")
def wallet_init(
    wallet: WalletOption = Path("wallet.json"),
    key_type: Annotated[
        KeyTypeChoice, typer.Option("--type", help="Holder key type.")
    ] = KeyTypeChoice.ED25519,
    as_json: JsonOption = False,
) -> None:
    """Create a wallet with a holder key, encrypted under a passphrase
    (COMMONS_WALLET_PASSPHRASE, or asked)."""
    created = Wallet.create(wallet, passphrase(confirm=True), key_type.key_type)
    did = encode_did_key(created.holder_key.public_key)
    emit(
        as_json,
        {"wallet": str(wallet), "holder_did": did},
        f"wallet {wallet} created; holder {did}",
    )


@app.command("accept-offer")
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
    opened = Wallet.open(wallet, passphrase())
    fetcher = wallet_fetcher(settings(ctx))
    try:
        local_id = accept_offer(opened, uri, tx_code=tx_code, fetcher=fetcher)
    finally:
        fetcher.close()
    stored = opened.credential(local_id)
    emit(
        as_json,
        {"id": local_id, "issuer": stored.issuer, "configuration": stored.configuration},
        f"received {stored.configuration} from {stored.issuer} as {local_id}",
    )


@app.command("list")
def wallet_list(wallet: WalletOption = Path("wallet.json"), as_json: JsonOption = False) -> None:
    """List the credentials in the wallet."""
    opened = Wallet.open(wallet, passphrase())
    rows = [
        {
            "id": c.id,
            "issuer": c.issuer,
            "configuration": c.configuration,
            "received_at": c.received_at,
        }
        for c in opened.credentials
    ]
    emit(
        as_json,
        rows,
        "\n".join(f"{r['id']:<4} {r['configuration']:<28} {r['issuer']}" for r in rows) or "empty",
    )


@app.command("present")
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
    opened = Wallet.open(wallet, passphrase())
    paths = {"/" + p.strip().lstrip("/") for p in disclose.split(",") if p.strip()}
    text = make_presentation(opened, credential_id, audience=aud, nonce=nonce, disclose=paths)
    emit(as_json, {"presentation": text}, text)
