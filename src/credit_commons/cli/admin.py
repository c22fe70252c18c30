"""``commons admin …``: administrator access — bearer tokens; lender registrations are
``cli/admin_lender.py``."""

from __future__ import annotations

from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, emit, group, lazy, unit
from credit_commons.identity import auth as identity_auth

__all__ = ["app"]

# `lender` has a module of its own: only it needs the gateway's registration model.
app = group(
    "admin",
    "Administrator access.",
    cls=lazy([("token", None, False), ("lender", "admin_lender", True)]),
)


@app.command("token")
def admin_token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who the token is for.")],
    as_json: JsonOption = False,
) -> None:
    """Issue an administrator bearer token (shown once; valid 30 days)."""
    with unit(ctx) as (rt, session):
        token, expires = identity_auth.issue_admin_token(session, rt, name)
    emit(as_json, {"token": token, "expires_at": expires}, token)
