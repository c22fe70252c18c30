"""``commons service-token …``: the platform services' short-lived tokens and their keys
(keys/service_tokens.py; docs/operations.md, "Service-to-service auth")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, emit, group, read_text_file, unit
from credit_commons.core.errors import ValidationError
from credit_commons.keys import (
    SERVICES,
    issue_service_token,
    public_key_from_jwk,
    register_service_key,
    rotate_service_key,
    service_key_states,
)

__all__ = ["app"]

app = group(
    "service-token",
    "Service-to-service tokens: issue one, rotate the service keys, register a remote "
    "service's key, list them.",
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


@app.command("register")
def service_token_register(
    ctx: typer.Context,
    service: Annotated[str, typer.Option("--service", help=_SERVICE_HELP)],
    name: Annotated[
        str, typer.Option("--name", help="The instance, e.g. the full node's id (node-…).")
    ],
    public_key: Annotated[
        str,
        typer.Option(
            "--public-key",
            help="Its public JWK (Ed25519 or P-256), as JSON or @FILE (- for standard input).",
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Register the public key of a service instance outside this platform's processes (a
    full node): its tokens (sub = NAME) verify under it.  A second registration of the same
    instance is a rotation by the operator: the new key signs, the old one verifies for
    COMMONS_SERVICE_KEY_OVERLAP seconds.  The service rotates its own key afterwards."""
    text = (
        read_text_file(Path(public_key[1:]), "the public key file")
        if public_key.startswith("@")
        else public_key
    )
    try:
        jwk = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValidationError("--public-key is not a JSON JWK") from e
    if not isinstance(jwk, dict) or "d" in jwk:
        raise ValidationError("--public-key takes a public JWK (no private member d)")
    key = public_key_from_jwk({k: v for k, v in jwk.items() if k not in ("kid", "alg", "use")})
    with unit(ctx) as (rt, session):
        info = register_service_key(
            session,
            rt,
            service=service,
            name=name,
            public_key=key,
            actor=rt.operator_actor("operator"),
        )
    emit(
        as_json,
        {"service": service, "name": name, "version": info.version, "kid": info.kid},
        f"{service} {name}: version {info.version} ({info.kid})",
    )


@app.command("keys")
def service_token_keys(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Each service key version (the platform's own and registered instances') and whether
    it signs, verifies or is retired."""
    with unit(ctx) as (rt, session):
        states = service_key_states(session, rt, rt.settings.service_key_overlap)
    rows = [
        {
            "service": k.service,
            "name": k.name,
            "version": k.version,
            "kid": k.kid,
            "state": k.state,
            "retires_at": None if k.retires_at is None else k.retires_at.isoformat(),
        }
        for k in states
    ]
    emit(
        as_json,
        {"keys": rows},
        "\n".join(
            f"{r['service']}"
            + ("" if r["name"] == r["service"] else f" {r['name']}")
            + f" v{r['version']} {r['state']} {r['kid']}"
            for r in rows
        )
        or "no service keys yet",
    )
