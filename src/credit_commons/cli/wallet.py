"""``commons wallet …``: the holder's wallet — the local commands (create, receive,
list, present: locally or to an OpenID4VP verifier) here, and what it does with a platform
(``cli/wallet_platform.py``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, KeyTypeChoice, emit, group, settings
from credit_commons.cli.wallet_capability import capabilities
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
from credit_commons.cli.wallet_reputation import join, leave, report, vouch
from credit_commons.cli.wallet_serve import proofs, serve
from credit_commons.core.errors import ValidationError
from credit_commons.keys.did_key import encode_did_key
from credit_commons.wallet.client import accept_offer, make_presentation
from credit_commons.wallet.oid4vp import PresentationPlan, ReadRequest, respond
from credit_commons.wallet.store import Wallet
from credit_commons.wallet.zk_proofs import fetch_statement, prove

__all__ = ["app"]

app = group("wallet", "The holder's wallet.")
app.command("register")(register)
app.add_typer(consent_app, name="consent")
app.command("history")(history)
app.add_typer(privacy_app, name="privacy")
app.add_typer(receipts_app, name="receipts")
app.command("rotate-key")(rotate_key)
app.command("vouch")(vouch)
app.command("report")(report)
app.command("join")(join)
app.command("leave")(leave)
app.command("capabilities")(capabilities)
app.command("serve")(serve)
app.command("proofs")(proofs)


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


def _is_request_url(target: str) -> bool:
    # A local credential id is c1, c2, ...; an OpenID4VP request is a URL.
    return ":" in target


def _show_plan(chosen: PresentationPlan, read: ReadRequest) -> str:
    # What the holder agrees to: who asks (and how the wallet knows), what goes to whom.
    request = chosen.request
    how = f"signed by {read.signed_by}" if read.signed_by else "unsigned (redirect_uri client)"
    lines = [f"{chosen.verifier} asks ({how}); the answer goes to {request.response_uri}:"]
    if not chosen.presentations:
        lines.append("  nothing in this wallet answers the request")
    for p in chosen.presentations:
        claims = ", ".join(p.claims) or "no selectively disclosable claim"
        lines.append(f"  {p.credential_id} ({p.configuration}, from {p.issuer}): {claims}")
    for z in request.zk_predicates or ():
        params = ", ".join(f"{k}={v}" for k, v in z.params.items())
        lines.append(f"  and a proof of {z.statement} ({params}) about {z.credential_query_id}")
    return "\n".join(lines)


def _present_to_verifier(
    ctx: typer.Context, wallet: Path, url: str, yes: bool, as_json: bool
) -> None:
    opened = Wallet.open(wallet, passphrase())
    fetcher = wallet_fetcher(settings(ctx))
    shown: list[PresentationPlan] = []

    def confirm(chosen: PresentationPlan, read: ReadRequest) -> bool:
        shown.append(chosen)
        typer.echo(_show_plan(chosen, read), err=True)
        # With nothing to present the question is whether to tell the verifier (which then
        # hears the same decline as when the holder says no to presenting).
        question = "Present these claims?" if chosen.presentations else "Tell it you decline?"
        return yes or typer.confirm(question, default=False, err=True)

    try:
        outcome = respond(opened, url, confirm=confirm, fetcher=fetcher)
    finally:
        fetcher.close()
    disclosed = [
        {"query": p.query_id, "credential": p.credential_id, "claims": list(p.claims)}
        for chosen in shown
        for p in chosen.presentations
    ]
    verifier = shown[0].verifier if shown else None
    result = {
        "verifier": verifier,
        "sent": outcome.sent,
        "presented": disclosed if outcome.sent else [],
        "redirect_uri": outcome.redirect_uri,
    }
    text = f"presented to {verifier}" if outcome.sent else f"declined; {verifier} was told"
    if outcome.redirect_uri:
        text += f"\ncontinue at {outcome.redirect_uri}"
    emit(as_json, result, text)


@app.command("present")
def wallet_present(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            help="An OpenID4VP request (openid4vp://?client_id=…&request_uri=…), or a local "
            "credential id (see list) to print a presentation of."
        ),
    ],
    nonce: Annotated[
        str | None, typer.Option("--nonce", help="Local presentation: the verifier's nonce.")
    ] = None,
    aud: Annotated[
        str | None, typer.Option("--aud", help="Local presentation: the verifier (audience).")
    ] = None,
    disclose: Annotated[
        str, typer.Option("--disclose", help="Comma-separated claim paths, e.g. income_bracket.")
    ] = "",
    yes: Annotated[
        bool, typer.Option("--yes", help="Answer the request without asking (for scripts).")
    ] = False,
    wallet: WalletOption = Path("wallet.json"),
    as_json: JsonOption = False,
) -> None:
    """Answer an OpenID4VP request: show what would be disclosed to whom, ask, then send the
    presentations to the verifier.  Given a local credential id instead, print an SD-JWT+KB
    presentation disclosing only the chosen claims (--nonce, --aud, --disclose)."""
    if _is_request_url(target):
        _present_to_verifier(ctx, wallet, target, yes, as_json)
        return
    if nonce is None or aud is None:
        raise ValidationError("a local presentation needs --nonce and --aud")
    opened = Wallet.open(wallet, passphrase())
    paths = {"/" + p.strip().lstrip("/") for p in disclose.split(",") if p.strip()}
    text = make_presentation(opened, target, audience=aud, nonce=nonce, disclose=paths)
    emit(as_json, {"presentation": text}, text)


def _param(text: str) -> tuple[str, int | tuple[str, ...]]:
    # name=650 (an integer), or name=a,b,c (a set of strings).
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise ValidationError("a --param is name=value (an integer, or a,b,c for a set)")
    if value.isdigit():
        return name, int(value)
    return name, tuple(v for v in value.split(",") if v)


@app.command("prove")
def wallet_prove(
    ctx: typer.Context,
    credential: Annotated[str, typer.Argument(help="The local credential id (see list).")],
    statement: Annotated[str, typer.Argument(help="The statement id, e.g. score_at_least.")],
    registry: Annotated[
        str, typer.Option("--registry", help="The platform's URL (its statement registry).")
    ],
    nonce: Annotated[str, typer.Option("--nonce", help="The verifier's nonce.")],
    audience: Annotated[str, typer.Option("--audience", help="The verifier (its client id).")],
    request_hash: Annotated[
        str, typer.Option("--request-hash", help="The request's hash (64 hex digits).")
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="A parameter, name=value (repeat), e.g. threshold=650."),
    ] = None,
    wallet: WalletOption = Path("wallet.json"),
    as_json: JsonOption = False,
) -> None:
    """Prove a statement about a claim of a held credential without disclosing it (its
    commitment is in the credential): print the proof JSON, bound to the verifier's nonce,
    audience and request hash (docs/zk.md)."""
    if len(request_hash) != 64 or any(c not in "0123456789abcdef" for c in request_hash):
        raise ValidationError("--request-hash is 64 lower-case hex digits")
    params = dict(_param(p) for p in param or [])
    opened = Wallet.open(wallet, passphrase())
    fetcher = wallet_fetcher(settings(ctx))
    try:
        with fetcher.http_client(timeout=10) as http:
            found = fetch_statement(
                http, fetcher, registry.rstrip("/") + "/v1/zk/statements", statement
            )
    finally:
        fetcher.close()
    proved = prove(
        opened.credential(credential),
        found,
        params,
        nonce=nonce,
        audience=audience,
        request_hash=request_hash,
        today=datetime.now(UTC).date(),
    )
    emit(as_json, proved, json.dumps(proved))
