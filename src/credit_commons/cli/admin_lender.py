"""``commons admin lender …``: approving a lender's registration request, and the console
tokens a lender's staff sign in to the web console with (docs/lenders.md)."""

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
    read_text_file,
    unit,
    validated,
)
from credit_commons.core.errors import ValidationError

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
            tls_client_certificate=request.tls_client_certificate,
            tls_client_thumbprint=request.tls_client_thumbprint,
        )
    emit(as_json, made.model_dump(mode="json"), f"registered {made.name} as {made.client_id}")


@app.command("certificate")
def admin_certificate(
    ctx: typer.Context,
    client_id: Annotated[str, typer.Argument(help="The lender's client id (lnd_...).")],
    cert: Annotated[
        Path | None,
        typer.Option(
            "--cert",
            help="The lender's TLS client certificate (PEM; '-' for stdin).",
            readable=False,
        ),
    ] = None,
    thumbprint: Annotated[
        str | None,
        typer.Option("--thumbprint", help="Or its x5t#S256 (base64url SHA-256 of the DER)."),
    ] = None,
    remove: Annotated[
        bool, typer.Option("--remove", help="Remove the binding: tokens without mTLS again.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Bind a lender's tokens to its TLS client certificate (RFC 8705), or remove the
    binding; takes effect at once (tokens bound to another certificate stop working)."""
    if sum((cert is not None, thumbprint is not None, remove)) != 1:
        raise ValidationError(
            "give one of --cert, --thumbprint or --remove", extra={"field": "certificate"}
        )
    pem = read_text_file(cert, "the certificate") if cert is not None else None
    with unit(ctx) as (rt, session):
        view = lenders.update_client(
            session,
            rt,
            operator(OPERATOR),
            client_id,
            tls_client_certificate=pem,
            tls_client_thumbprint=thumbprint,
            clear_certificate=remove,
        )
    bound = view.tls_client_thumbprint
    emit(
        as_json,
        {"client_id": view.client_id, "tls_client_thumbprint": bound},
        f"{view.client_id}: tokens bound to x5t#S256 {bound}"
        if bound
        else f"{view.client_id}: tokens not bound to a certificate",
    )


@app.command("console-token")
def admin_console_token(
    ctx: typer.Context,
    client_id: Annotated[str, typer.Argument(help="The lender's client id (lnd_...).")],
    label: Annotated[
        str, typer.Option("--label", help="Whose token it is (a person or desk at the lender).")
    ],
    days: Annotated[int, typer.Option("--days", help="Days it is valid (1-365).")] = 30,
    as_json: JsonOption = False,
) -> None:
    """Issue a console token for a lender's staff (shown once); refused for a suspended
    lender."""
    with unit(ctx) as (rt, session):
        made = lenders.issue_console_token(
            session, rt, operator(OPERATOR), client_id, label=label, days=days
        )
    data = {
        "token_id": made.token_id,
        "token": made.token,
        "client_id": made.client_id,
        "expires_at": made.expires_at.isoformat(),
    }
    emit(as_json, data, made.token)


@app.command("console-tokens")
def admin_console_tokens(
    ctx: typer.Context,
    client_id: Annotated[str, typer.Argument(help="The lender's client id (lnd_...).")],
    as_json: JsonOption = False,
) -> None:
    """List a lender's console tokens (never their secrets), newest first."""
    with unit(ctx, read_only=True) as (_rt, session):
        found = lenders.list_console_tokens(session, operator(OPERATOR), client_id)
    rows = [
        {
            "token_id": t.token_id,
            "label": t.label,
            "created_at": t.created_at.isoformat(),
            "expires_at": t.expires_at.isoformat(),
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        }
        for t in found
    ]
    text = "\n".join(
        f"{r['token_id']}  {r['label']}  expires {r['expires_at']}"
        + (f"  revoked {r['revoked_at']}" if r["revoked_at"] else "")
        for r in rows
    )
    emit(as_json, rows, text or "no console tokens")


@app.command("revoke-console-token")
def admin_revoke_console_token(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token's id (lct_...).")],
    as_json: JsonOption = False,
) -> None:
    """Revoke a console token: its sessions end at their next page."""
    with unit(ctx) as (rt, session):
        view = lenders.revoke_console_token(session, rt, operator(OPERATOR), token_id)
    revoked = view.revoked_at.isoformat() if view.revoked_at else None
    emit(as_json, {"token_id": view.token_id, "revoked_at": revoked}, f"revoked {view.token_id}")
