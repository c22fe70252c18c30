"""``commons wallet vouch | report | join | leave``: the holder's reputation events
(docs/reputation.md).

``join`` registers the holder's DID as a member with a credential it holds (a KYC credential
unlocks vouching): the presentation's Key Binding JWT names the platform (``aud``) and the
DID (``nonce``).  ``vouch`` and ``report`` sign an event with the holder key (Ed25519), submit
it, and keep the log's receipt in the wallet once it verifies under the pinned log key.
``leave`` asks the platform to leave the holder's DID out of scoring for good (a tombstone
signed by the holder key; it cannot be undone).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, emit
from credit_commons.cli.wallet_platform import (
    LogKeyOption,
    UrlOption,
    WalletOption,
    keep_receipt,
    pinned_log_key,
    platform_session,
)
from credit_commons.core.errors import ValidationError
from credit_commons.keys import KeyType, encode_did_key
from credit_commons.reputation import EventType, new_nonce, sign_event
from credit_commons.reputation.capability import sign_tombstone
from credit_commons.wallet.client import make_presentation

__all__ = ["join", "leave", "report", "vouch"]

ToArg = Annotated[str, typer.Argument(help="The member you vouch for or report (a did:key).")]
CtxOption = Annotated[
    str, typer.Option("--ctx", help="The context (one the platform's rule set allows).")
]
PayloadOption = Annotated[
    str | None, typer.Option("--payload-cid", help="A CID of evidence (raw sha2-256 CIDv1).")
]
DetachedOption = Annotated[
    bool, typer.Option("--detached", help="Sign as a detached JWS instead of inline.")
]


def _send(
    ctx: typer.Context,
    kind: EventType,
    to: str,
    context: str,
    payload_cid: str | None,
    detached: bool,
    wallet: Path,
    url: str | None,
    log_key: str | None,
    as_json: bool,
) -> None:
    with platform_session(ctx, wallet, url, None) as (opened, client):
        key = opened.holder_key
        if key.key_type is not KeyType.ED25519:
            raise ValidationError("reputation events are signed with an Ed25519 holder key")
        now = datetime.now(UTC).replace(microsecond=0)
        event = sign_event(
            key,
            type=kind,
            to=to,
            ctx=context,
            epoch=now.strftime("%Y-%m"),
            nonce=new_nonce(os.urandom(12)),
            issued_at=now,
            payload_cid=payload_cid,
            detached=detached,
        )
        answer = client.submit_event(event.document())
        pinned = pinned_log_key(opened, client, log_key)
        keep_receipt(opened, answer["receipt"], f"{kind} {answer['cid']}", pinned)
    emit(as_json, answer, f"{kind} accepted: {answer['cid']} (receipt kept)")


def vouch(
    ctx: typer.Context,
    to: ToArg,
    context: CtxOption = "general",
    payload_cid: PayloadOption = None,
    detached: DetachedOption = False,
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    log_key: LogKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Vouch for a member: a signed event within your budget for the context and month."""
    _send(ctx, "vouch", to, context, payload_cid, detached, wallet, url, log_key, as_json)


def report(
    ctx: typer.Context,
    to: ToArg,
    context: CtxOption = "general",
    payload_cid: PayloadOption = None,
    detached: DetachedOption = False,
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    log_key: LogKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Report a member: a signed event within your budget for the context and month."""
    _send(ctx, "report", to, context, payload_cid, detached, wallet, url, log_key, as_json)


def join(
    ctx: typer.Context,
    credential: Annotated[str, typer.Argument(help="The local credential id (see list).")],
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register your DID as a member by presenting a credential you hold (a KYC credential
    of a type and issuer the rule set lists unlocks vouching; others count as attestations)."""
    with platform_session(ctx, wallet, url, None) as (opened, client):
        stored = opened.credential(credential)
        did = encode_did_key(opened.holder_key.public_key)
        presentation = make_presentation(
            opened, stored.id, audience=client.url, nonce=did, disclose=set()
        )
        answer = client.join(did, presentation)
    kind = "KYC member" if answer.get("kyc") else "attestation"
    emit(as_json, answer, f"{did} registered ({kind}, {answer.get('vct')})")


def leave(
    ctx: typer.Context,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the DID is left out of scoring for good.")
    ] = False,
    wallet: WalletOption = Path("wallet.json"),
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Leave reputation scoring for good: your DID gets no score, your vouches and reports
    stop counting, and it cannot register, vouch or be vouched for again."""
    if not yes:
        raise ValidationError("leaving cannot be undone: pass --yes to confirm")
    with platform_session(ctx, wallet, url, None) as (opened, client):
        key = opened.holder_key
        if key.key_type is not KeyType.ED25519:
            raise ValidationError("reputation tombstones are signed with an Ed25519 holder key")
        did = encode_did_key(key.public_key)
        proof = sign_tombstone(key, did=did, audience=client.url, iat=int(time.time()))
        answer = client.leave(did, proof)
    emit(as_json, answer, f"{did} left scoring ({answer.get('event_id')})")
