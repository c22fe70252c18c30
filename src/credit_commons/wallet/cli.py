"""``commons wallet`` commands beyond receiving and presenting credentials: what a borrower
does with the platform — register, consents, access history, export and erasure, key
rotation, receipts — each signed with the holder's key (docs/wallet.md).

:func:`install` adds them to the ``wallet`` group that ``cli.py`` defines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from credit_commons.cli_support import JsonOption
from credit_commons.cli_support import emit as _emit
from credit_commons.cli_support import settings as _settings

if TYPE_CHECKING:
    from credit_commons.core.net import OutboundFetcher
    from credit_commons.core.settings import Settings
    from credit_commons.wallet.platform import Platform
    from credit_commons.wallet.store import Wallet

__all__ = ["WalletOption", "install", "passphrase", "wallet_fetcher"]

WalletOption = Annotated[
    Path,
    typer.Option("--wallet", envvar="COMMONS_WALLET_FILE", help="Wallet file.", readable=False),
]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="COMMONS_WALLET_URL",
        help="The platform's URL (remembered in the wallet once given).",
    ),
]
IdentityOption = Annotated[
    str | None,
    typer.Option(
        "--identity",
        envvar="COMMONS_WALLET_IDENTITY",
        help="Your identity token there, idt_… (remembered in the wallet once given).",
    ),
]
ConsentArg = Annotated[str, typer.Argument(help="The consent id (cns_…).")]


def passphrase(confirm: bool = False) -> str:
    """The wallet passphrase: ``COMMONS_WALLET_PASSPHRASE``, or asked."""
    value = os.environ.get("COMMONS_WALLET_PASSPHRASE")
    if value:
        return value
    return str(typer.prompt("Wallet passphrase", hide_input=True, confirmation_prompt=confirm))


def wallet_fetcher(settings: Settings) -> OutboundFetcher:
    """The SSRF-guarded fetcher the wallet reaches platforms and issuers through."""
    from credit_commons.core.net import OutboundFetcher

    return OutboundFetcher(
        allow_private=settings.insecure_allow_private_network,
        allow_http=settings.insecure_allow_http,
    )


@contextmanager
def _platform(
    ctx: typer.Context,
    wallet: Path,
    url: str | None,
    identity: str | None,
) -> Iterator[tuple[Wallet, Platform]]:
    # The opened wallet and its platform; a URL or identity given is remembered.
    from credit_commons.core.errors import ValidationError
    from credit_commons.wallet.platform import Platform
    from credit_commons.wallet.store import Wallet

    opened = Wallet.open(wallet, passphrase())
    if identity is not None and not identity.startswith("idt_"):
        raise ValidationError("--identity must be an identity token (idt_…)")
    base = url or opened.platform.get("url")
    if not base:
        raise ValidationError(
            "the wallet does not know which platform to use",
            hint="pass --url https://… once (or set COMMONS_WALLET_URL)",
        )
    fetcher = wallet_fetcher(_settings(ctx))
    try:
        fetcher.check_url(base)
        client = Platform(
            base, opened.holder_key, identity or opened.platform.get("identity"), fetcher=fetcher
        )
        before = dict(opened.platform)
        with client:
            yield opened, client
        opened.remember(url=base.rstrip("/"), identity=identity)
        if opened.platform != before:
            opened.save()
    finally:
        fetcher.close()


def _consent_rows(items: list[dict[str, Any]]) -> str:
    lines = [
        f"{c['consent_id']}  {c['status']:<8} {c['lender']:<28} {c['purpose']['code']:<18} "
        f"until {c['consent_expiry']}"
        for c in items
    ]
    return "\n".join(lines) or "no consents"


# -- register ------------------------------------------------------------------------------


def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Your name, as the platform keeps it.")],
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register yourself on the platform with the holder key's DID in your profile (the
    wallet remembers the identity token)."""
    with _platform(ctx, wallet, url, None) as (opened, client):
        created = client.register(name)
        opened.remember(identity=created["identity_token"])
    data = {"identity": created["identity_token"], "holder_did": opened.holder_did}
    _emit(as_json, data, f"registered as {data['identity']} with {data['holder_did']}")


# -- consents ------------------------------------------------------------------------------

consent_app = typer.Typer(help="Consents addressed to you: list, decide.", no_args_is_help=True)


@consent_app.command("list")
def consent_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="Only this status (PENDING, ACTIVE, …).")
    ] = None,
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    identity: IdentityOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the consents addressed to you, newest first (a request signed by your key)."""
    with _platform(ctx, wallet, url, identity) as (_, client):
        items = client.consents(status.upper() if status else None)
    _emit(as_json, items, _consent_rows(items))


@consent_app.command("approve")
def consent_approve(
    ctx: typer.Context,
    consent_id: ConsentArg,
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a consent by signing it with your DID key."""
    with _platform(ctx, wallet, url, None) as (_, client):
        answer = client.approve(consent_id)
    _emit(as_json, answer, f"{answer['consent_id']} {answer['status']} (approved with your DID)")


def _decision(action: str, done: str) -> Any:
    def command(
        ctx: typer.Context,
        consent_id: ConsentArg,
        wallet: WalletOption = Path("wallet.json"),
        url: UrlOption = None,
        identity: IdentityOption = None,
        as_json: JsonOption = False,
    ) -> None:
        with _platform(ctx, wallet, url, identity) as (_, client):
            answer = client.decide(consent_id, action)
        _emit(as_json, answer, f"{answer['consent_id']} {answer['status']} ({done})")

    command.__doc__ = f"{action.capitalize()} a consent (a request signed by your key)."
    return command


consent_app.command("reject")(_decision("reject", "rejected"))


def install(wallet_app: typer.Typer) -> None:
    """Add these commands to the ``commons wallet`` group."""
    wallet_app.command("register")(register)
    wallet_app.add_typer(consent_app, name="consent")
