"""``commons admin lender …``: approving a lender's registration request (docs/lenders.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from credit_commons import lenders
from credit_commons.cli.support import (
    OPERATOR,
    JsonOption,
    emit,
    group,
    operator,
    read_json_file,
    unit,
    validated,
)

__all__ = ["app"]

app = group("lender", "Lender registrations (administrators).")


@app.command("approve")
def admin_approve(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="A registration request ('-' for stdin).", readable=False)
    ],
    as_json: JsonOption = False,
) -> None:
    """Register a lender from its registration request; prints its client id."""
    data = read_json_file(file, "the registration request")
    request = validated(lenders.LenderCreate, data, "registration request")
    with unit(ctx) as (rt, session):
        made = lenders.register_client(
            session,
            rt,
            operator(OPERATOR),
            name=request.name,
            jwks=request.jwks,
            allowed_purposes=request.allowed_purposes,
            webhook_url=request.webhook_url,
        )
    emit(as_json, made.model_dump(mode="json"), f"registered {made.name} as {made.client_id}")
