"""``commons anchor …``: anchoring checkpoints to external ledgers (docs/log.md)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from web3 import Web3

from credit_commons.cli.support import JsonOption, emit, group, runtime, settings
from credit_commons.core.errors import ConfigurationError
from credit_commons.ledger.anchoring import anchor_status
from credit_commons.ledger.anchors.evm import deploy_anchor_contract

__all__ = ["app"]

app = group("anchor", "Anchoring checkpoints to external ledgers.")


@app.command("status")
def anchor_status_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show anchor jobs: backend, checkpoint size, status, attempts."""
    with runtime(ctx) as rt:
        jobs = anchor_status(rt)
    lines = [
        f"{j.backend:<6} size {j.size:<10} {j.status:<10} attempts {j.attempts}"
        + (f" ({j.last_error})" if j.last_error else "")
        for j in jobs
    ]
    anchors = [asdict(j) for j in jobs]
    emit(as_json, {"anchors": anchors}, "\n".join(lines) if lines else "no anchors yet")


@app.command("deploy")
def anchor_deploy(
    ctx: typer.Context,
    rpc_url: Annotated[str, typer.Option("--rpc-url", help="EVM JSON-RPC endpoint.")],
    as_json: JsonOption = False,
) -> None:
    """Deploy the Anchor contract with COMMONS_ANCHOR_EVM_PRIVATE_KEY; prints its address."""
    key = settings(ctx).anchor_evm_private_key
    if key is None:
        raise ConfigurationError("set COMMONS_ANCHOR_EVM_PRIVATE_KEY to the deploying account")
    web3 = Web3(Web3.HTTPProvider(rpc_url))
    address = deploy_anchor_contract(web3, key.get_secret_value())
    emit(
        as_json,
        {"contract": address},
        f"Anchor contract at {address}; set COMMONS_ANCHOR_EVM_CONTRACT",
    )
