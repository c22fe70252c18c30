"""``commons wallet`` commands that talk to the platform: what a borrower does there —
register, consents, access history, export and erasure, key rotation, receipts — each
signed with the holder's key (docs/wallet.md).  ``cli/wallet.py`` assembles the group."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, emit, settings
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import IntegrityError, ValidationError
from credit_commons.core.files import write_private
from credit_commons.core.net import OutboundFetcher
from credit_commons.core.settings import Settings
from credit_commons.keys.algorithms import PrivateKey
from credit_commons.keys.did_key import encode_did_key
from credit_commons.ledger.receipts import ReceiptInvalid, verify_any_receipt, verify_receipt
from credit_commons.wallet.platform import Platform, PlatformRefused
from credit_commons.wallet.store import Wallet

__all__ = [
    "LogKeyOption",
    "UrlOption",
    "WalletOption",
    "consent_app",
    "history",
    "keep_receipt",
    "passphrase",
    "pinned_log_key",
    "platform_session",
    "privacy_app",
    "receipts_app",
    "register",
    "rotate_key",
    "wallet_fetcher",
]

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
    """The SSRF-guarded fetcher the wallet reaches platforms, issuers and verifiers
    through: https to public addresses; in development also a loopback host over http (a
    development platform's public URL), with nothing to set; anything else only with the
    ``COMMONS_INSECURE_*`` setting each refusal names.  Certificates are verified against
    the public roots and ``COMMONS_WALLET_CA_FILE``'s CAs."""
    return OutboundFetcher(
        allow_private=settings.insecure_allow_private_network,
        allow_http=settings.insecure_allow_http,
        allow_loopback=not settings.is_production,
        ca_file=settings.wallet_ca_file,
    )


@contextmanager
def platform_session(
    ctx: typer.Context,
    wallet: Path,
    url: str | None,
    identity: str | None,
) -> Iterator[tuple[Wallet, Platform]]:
    """The opened wallet and a client of its platform; a URL or identity given is
    remembered, and what a command that succeeded changed in the wallet is saved."""
    opened = Wallet.open(wallet, passphrase())
    if identity is not None and not identity.startswith("idt_"):
        raise ValidationError("--identity must be an identity token (idt_…)")
    base = url or opened.platform.url
    if not base:
        raise ValidationError(
            "the wallet does not know which platform to use",
            hint="pass --url https://… once (or set COMMONS_WALLET_URL)",
        )
    fetcher = wallet_fetcher(settings(ctx))
    try:
        fetcher.check_url(base)
        client = Platform(
            base, opened.holder_key, identity or opened.platform.identity, fetcher=fetcher
        )
        before = json.dumps(opened.contents, sort_keys=True)
        opened.remember(url=base.rstrip("/"), identity=identity)
        with client:
            yield opened, client
        # Anything a command that succeeded changed (what it was told to remember,
        # receipts, keys, an identity erased) is saved.
        if json.dumps(opened.contents, sort_keys=True) != before:
            opened.save()
    finally:
        fetcher.close()


def _consent_rows(items: list[JsonObject]) -> str:
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
    with platform_session(ctx, wallet, url, None) as (opened, client):
        created = client.register(name)
        opened.remember(identity=created["identity_token"])
    data = {"identity": created["identity_token"], "holder_did": opened.holder_did}
    emit(as_json, data, f"registered as {data['identity']} with {data['holder_did']}")


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
    with platform_session(ctx, wallet, url, identity) as (_, client):
        items = client.consents(status.upper() if status else None)
    emit(as_json, items, _consent_rows(items))


@consent_app.command("approve")
def consent_approve(
    ctx: typer.Context,
    consent_id: ConsentArg,
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a consent by signing it with your DID key."""
    with platform_session(ctx, wallet, url, None) as (_, client):
        answer = client.approve(consent_id)
    emit(as_json, answer, f"{answer['consent_id']} {answer['status']} (approved with your DID)")


def _decision(action: str, done: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        consent_id: ConsentArg,
        wallet: WalletOption = Path("wallet.json"),
        url: UrlOption = None,
        identity: IdentityOption = None,
        as_json: JsonOption = False,
    ) -> None:
        with platform_session(ctx, wallet, url, identity) as (_, client):
            answer = client.decide(consent_id, action)
        emit(as_json, answer, f"{answer['consent_id']} {done}: now {answer['status']}")

    command.__doc__ = f"{action.capitalize()} a consent (a request signed by your key)."
    return command


def _did_of(key: PrivateKey) -> str:
    """The ``did:key`` of a holder key."""
    return encode_did_key(key.public_key)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def pinned_log_key(opened: Wallet, client: Platform, given: str | None) -> str:
    """The log key receipts are verified against: given (out of band), pinned earlier, or
    fetched from the platform and pinned on first use (trust on first use; docs/wallet.md).
    Raises ``IntegrityError`` for a given key other than the one pinned."""
    pinned = opened.platform.log_key
    if given is not None:
        if pinned is not None and pinned != given:
            raise IntegrityError(
                "the wallet has another log key pinned for this platform",
                hint="a log's key never changes; check where this key came from",
            )
        opened.remember(log_key=given)
        return given
    if pinned is None:
        pinned = client.log_key().vkey
        opened.remember(log_key=pinned)
    return pinned


LogKeyOption = Annotated[
    str | None,
    typer.Option(
        "--log-key",
        help="The log's verifier key, obtained out of band (default: the one pinned; on "
        "first use the platform's, pinned).",
    ),
]


def keep_receipt(opened: Wallet, receipt: JsonObject, about: str, log_key: str) -> None:
    """Keep a receipt in the wallet once it verifies under ``log_key`` (the wallet holds only
    receipts that do).  Raises ``ReceiptInvalid``."""
    verify_any_receipt(receipt, log_key)
    opened.keep_receipt(receipt, about=about, kept_at=_now())


for _action, _done in (("reject", "rejected"), ("pause", "paused"), ("resume", "resumed")):
    consent_app.command(_action)(_decision(_action, _done))


@consent_app.command("revoke")
def consent_revoke(
    ctx: typer.Context,
    consent_id: ConsentArg,
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    identity: IdentityOption = None,
    log_key: LogKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a consent; the wallet keeps the proof of withdrawal (see `receipts`)."""
    with platform_session(ctx, wallet, url, identity) as (opened, client):
        key = pinned_log_key(opened, client, log_key)
        answer = client.decide(consent_id, "revoke")
        keep_receipt(opened, answer["receipt"], f"revocation of {consent_id}", key)
    emit(
        as_json,
        answer,
        f"{answer['consent_id']} {answer['status']}; receipt kept: {answer['event_id']}",
    )


@consent_app.command("revoke-all")
def consent_revoke_all(
    ctx: typer.Context,
    lender: Annotated[str, typer.Option("--lender", help="The lender's client id (lnd_…).")],
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    identity: IdentityOption = None,
    log_key: LogKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke every consent you gave one lender; the wallet keeps a receipt for each."""
    with platform_session(ctx, wallet, url, identity) as (opened, client):
        key = pinned_log_key(opened, client, log_key)
        answer = client.revoke_all(lender)
        for consent_id, receipt in answer["receipts"].items():
            keep_receipt(opened, receipt, f"revocation of {consent_id}", key)
    emit(
        as_json,
        answer,
        f"revoked {len(answer['revoked'])} consent(s) of {lender}"
        + "".join(f"\n  {c}" for c in answer["revoked"]),
    )


# -- access history ------------------------------------------------------------------------


def history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Newest N.")] = 200,
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    identity: IdentityOption = None,
    log_key: LogKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who saw what, when, allowed or denied — each entry's log receipt verified here,
    against the pinned log key (an entry that does not verify fails the command)."""
    with platform_session(ctx, wallet, url, identity) as (opened, client):
        key = pinned_log_key(opened, client, log_key)
        entries = client.history(limit)
    for item in entries:
        receipt = item.get("receipt")
        if receipt is None:
            item["verified"] = "pending"
            continue
        verified = verify_receipt(receipt, key)
        if not verified.event_checked or verified.entry.id != item["event_id"]:
            raise ReceiptInvalid(f"the receipt of {item['event_id']} is not that event's")
        item["verified"] = "included"
    lines = [
        f"{e['at']}  {e['outcome']:<7} {e['operation'] or '-':<22} {e['lender']:<28} "
        f"{e['reason'] or '':<26} receipt {e['verified']}"
        for e in entries
    ]
    emit(as_json, entries, "\n".join(lines) or "no accesses")


# -- privacy -------------------------------------------------------------------------------

privacy_app = typer.Typer(
    help="Your data: an export, or erasure (confirmed with your key).", no_args_is_help=True
)


@privacy_app.command("export")
def privacy_export(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write the export here (mode 0600; default stdout).", readable=False
        ),
    ] = None,
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    identity: IdentityOption = None,
    as_json: JsonOption = False,
) -> None:
    """Everything the platform holds about you, as JSON (a data-subject request confirmed
    by your key's signature)."""
    with platform_session(ctx, wallet, url, identity) as (_, client):
        exported = client.data_request("export")
    if out is None:
        emit(as_json, exported, json.dumps(exported, indent=2, sort_keys=True))
        return
    write_private(out, json.dumps(exported, indent=2, sort_keys=True).encode())
    sections = sorted(k for k in exported if isinstance(exported[k], list | dict))
    emit(
        as_json,
        {"out": str(out), "sections": sections},
        f"export written to {out} ({', '.join(sections)})",
    )


@privacy_app.command("erase")
def privacy_erase(
    ctx: typer.Context,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: this erases you from the platform for good.")
    ] = False,
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    identity: IdentityOption = None,
    log_key: LogKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Erase yourself from the platform (confirmed by your key's signature); the wallet
    keeps the proof of erasure and forgets the identity."""
    if not yes:
        raise ValidationError(
            "erasure cannot be undone", hint="add --yes to erase yourself from the platform"
        )
    with platform_session(ctx, wallet, url, identity) as (opened, client):
        key = pinned_log_key(opened, client, log_key)
        erased = client.data_request("erasure")
        keep_receipt(opened, erased["receipt"], f"erasure of {client.token}", key)
        opened.forget_identity()
    emit(
        as_json,
        erased,
        f"erased; receipt kept: {erased['event_id']}; unreadable in backups after "
        f"{erased.get('unreadable_in_backups_after')}",
    )


# -- receipts ------------------------------------------------------------------------------

receipts_app = typer.Typer(
    help="Proofs of withdrawal and erasure the wallet keeps.", no_args_is_help=True
)


@receipts_app.command("list")
def receipts_list(wallet: WalletOption = Path("wallet.json"), as_json: JsonOption = False) -> None:
    """The receipts kept: what each proves, and whether a checkpoint covers it yet."""
    opened = Wallet.open(wallet, passphrase())
    rows = [
        {
            "event_id": r.event_id,
            "type": r.type,
            "about": r.about,
            "kept_at": r.kept_at,
            "included": "checkpoint" in r.receipt,
        }
        for r in opened.receipts
    ]
    emit(
        as_json,
        rows,
        "\n".join(
            f"{r['event_id']}  {r['type']:<16} {'included' if r['included'] else 'pending':<9}"
            f" {r['about']}"
            for r in rows
        )
        or "no receipts",
    )


@receipts_app.command("refresh")
def receipts_refresh(
    ctx: typer.Context,
    event_id: Annotated[
        str | None, typer.Argument(help="One receipt (default: every pending one).")
    ] = None,
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    log_key: LogKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Complete pending receipts with their inclusion proof and checkpoint, from the
    public log (works after an erasure too); each is verified before it is kept."""
    with platform_session(ctx, wallet, url, None) as (opened, client):
        key = pinned_log_key(opened, client, log_key)
        chosen = [opened.receipt(event_id)] if event_id else list(opened.receipts)
        done: list[dict[str, str | bool]] = []
        for kept in chosen:
            receipt = kept.receipt
            if "checkpoint" in receipt and event_id is None:
                continue
            try:
                public = client.public_receipt(kept.event_id)
            except PlatformRefused as e:
                if e.status != 404:
                    raise
                done.append({"event_id": kept.event_id, "included": False})
                continue
            completed = {
                # The public receipt's members as the platform sent them (it has no event).
                **public.model_dump(mode="json", exclude_none=True),
                "event": receipt["event"],
                "signed_entry": receipt["signed_entry"],
            }
            keep_receipt(opened, completed, kept.about, key)
            done.append({"event_id": kept.event_id, "included": True})
    emit(
        as_json,
        done,
        "\n".join(
            f"{d['event_id']}  {'included' if d['included'] else 'pending: no checkpoint yet'}"
            for d in done
        )
        or "nothing to refresh",
    )


@receipts_app.command("show")
def receipts_show(
    event_id: Annotated[str, typer.Argument(help="The event id (evt_…).")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write it here (for `commons log verify-receipt`).", readable=False
        ),
    ] = None,
    wallet: WalletOption = Path("wallet.json"),
    as_json: JsonOption = False,
) -> None:
    """Print a kept receipt document (JSON), or write it to a file."""
    opened = Wallet.open(wallet, passphrase())
    document = opened.receipt(event_id).receipt
    text = json.dumps(document, indent=2, sort_keys=True)
    if out is None:
        typer.echo(text)
        return
    write_private(out, text.encode())
    emit(as_json, {"out": str(out)}, f"receipt written to {out}")


# -- key rotation --------------------------------------------------------------------------


def rotate_key(
    ctx: typer.Context,
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    identity: IdentityOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replace the holder key: the platform is told in a request signed by the old key;
    credentials bound to the old key stay presentable until re-issued (docs/wallet.md)."""
    with platform_session(ctx, wallet, url, identity) as (opened, client):
        new = opened.pending_key
        resumed = new is not None
        if new is None:
            new = PrivateKey.generate(opened.holder_key.key_type)
            # Saved before the platform is told, so the new key cannot be lost after the
            # platform accepted it.
            opened.begin_rotation(new)
            opened.save()
        try:
            answer = client.change_key(new)
        except PlatformRefused as e:
            # An interrupted rotation the platform had already accepted: the old key is
            # refused and the new one speaks for the identity.  Finish it.
            if not (resumed and e.status == 401):
                raise
            client.key = new
            client.consents()
            answer = {"identity": client.token, "did": _did_of(new), "event_id": None}
        opened.finish_rotation()
    emit(
        as_json,
        {**answer, "previous_keys": len(opened.contents["keys"]) - 1},
        f"holder key replaced: {answer['did']}",
    )
