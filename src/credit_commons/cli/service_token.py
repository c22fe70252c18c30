"""``commons service-token …``: the platform services' short-lived tokens and their keys
(keys/service_tokens.py; docs/operations.md, "Service-to-service auth")."""

from __future__ import annotations

from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, emit, group, unit
from credit_commons.keys import (
    SERVICES,
    KeyNotFound,
    accepted_keys,
    issue_service_token,
    rotate_service_key,
    service_key_name,
)

__all__ = ["app"]

app = group(
    "service-token", "Service-to-service tokens: issue one, rotate the service keys, list them."
)

_SERVICE_HELP = f"The calling service: {', '.join(sorted(SERVICES))}."


@app.command("issue")
def service_token_issue(
    ctx: typer.Context,
    service: Annotated[str, typer.Option("--service", help=_SERVICE_HELP)],
    scopes: Annotated[
        list[str], typer.Option("--scope", help="A scope the token grants (repeatable).")
    ],
    ttl: Annotated[
        int | None,
        typer.Option("--ttl", help="Seconds it lives (default COMMONS_SERVICE_TOKEN_TTL, ≤ 300)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Print a token for SERVICE granting the scopes, signed by its newest key version."""
    with unit(ctx) as (rt, session):
        lifetime = rt.settings.service_token_ttl if ttl is None else ttl
        if not 0 < lifetime <= rt.settings.service_token_ttl:
            raise typer.BadParameter(f"--ttl is 1..{rt.settings.service_token_ttl} seconds")
        token = issue_service_token(
            session,
            rt,
            service=service,
            scopes=scopes,
            audience=rt.settings.public_url.rstrip("/"),
            ttl=lifetime,
        )
    emit(as_json, {"service": service, "token": token, "expires_in": lifetime}, token)


@app.command("rotate")
def service_token_rotate(
    ctx: typer.Context,
    services: Annotated[
        list[str] | None,
        typer.Option("--service", help=f"{_SERVICE_HELP} Repeatable; default: every one."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Make a new key version the signer of each service; the previous one keeps verifying
    for COMMONS_SERVICE_KEY_OVERLAP seconds, then retires."""
    chosen = sorted(set(services or SERVICES))
    rows = []
    with unit(ctx) as (rt, session):
        for service in chosen:
            info = rotate_service_key(session, rt, service)
            rows.append({"service": service, "version": info.version, "kid": info.kid})
    emit(
        as_json,
        {"rotated": rows},
        "\n".join(f"{r['service']}: version {r['version']} ({r['kid']})" for r in rows),
    )


@app.command("keys")
def service_token_keys(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Each service key version and whether it signs, verifies or is retired."""
    rows = []
    with unit(ctx) as (rt, session):
        overlap = rt.settings.service_key_overlap
        for service in sorted(SERVICES):
            try:
                versions = rt.key_store.versions(session, service_key_name(service))
            except KeyNotFound:
                continue
            live = {v.kid for v in accepted_keys(session, rt, service, overlap)}
            newest = max(v.version for v in versions)
            for v in versions:
                state = (
                    "signing"
                    if v.version == newest
                    else "verifying"
                    if v.kid in live
                    else "retired"
                )
                rows.append(
                    {"service": service, "version": v.version, "kid": v.kid, "state": state}
                )
    emit(
        as_json,
        {"keys": rows},
        "\n".join(f"{r['service']} v{r['version']} {r['state']} {r['kid']}" for r in rows)
        or "no service keys yet",
    )
