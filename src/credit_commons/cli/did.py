"""``commons did …``: decentralised identifiers (did:key, did:web)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, emit, group, settings
from credit_commons.core.net import OutboundFetcher
from credit_commons.keys.did_web import DidResolver

__all__ = ["app"]

app = group("did", "Decentralised identifiers.")


@app.command("resolve")
def did_resolve(
    ctx: typer.Context,
    did: Annotated[str, typer.Argument(help="A did:key or did:web.")],
    as_json: JsonOption = False,
) -> None:
    """Resolve a DID to its DID document."""
    config = settings(ctx)
    fetcher = OutboundFetcher(
        allow_private=config.insecure_allow_private_network,
        allow_http=config.insecure_allow_http,
    )
    try:
        document = DidResolver(fetcher).resolve(did)
    finally:
        fetcher.close()
    emit(as_json, document, json.dumps(document, indent=2))
