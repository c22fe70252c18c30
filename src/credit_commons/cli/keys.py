"""``commons keys …``: signing keys and the master key file (docs/keys.md)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, KeyTypeChoice, emit, group, settings, unit
from credit_commons.core.clock import SystemClock
from credit_commons.keys import service
from credit_commons.keys.master import MasterKeyring
from credit_commons.keys.store import KeyVersion

__all__ = ["app"]

app = group("keys", "Signing keys and the master key.")


@dataclass(frozen=True, slots=True)
class _KeyRow:
    # A key version as the commands print it (--json: its fields).
    name: str
    version: int
    key_type: str
    alg: str
    kid: str
    backend: str
    created_at: str


def _key_row(info: KeyVersion) -> _KeyRow:
    return _KeyRow(
        name=info.name,
        version=info.version,
        key_type=str(info.key_type),
        alg=info.key_type.jose_alg,
        kid=info.kid,
        backend=info.backend,
        created_at=info.created_at.isoformat(),
    )


@app.command("init-master")
def keys_init_master(
    ctx: typer.Context,
    production: Annotated[
        bool, typer.Option("--production", help="Mark the key for production use.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Create the master key file (0600) named by COMMONS_MASTER_KEY_FILE."""
    path = settings(ctx).resolved_master_key_file
    ring = MasterKeyring.create(path, development=not production, now=SystemClock().now())
    emit(
        as_json,
        {"path": str(path), "development": ring.development, "version": ring.current_version},
        f"created {'production' if production else 'development'} master key {path}",
    )


@app.command("create")
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Key name, e.g. issuer-main.")],
    key_type: Annotated[
        KeyTypeChoice, typer.Option("--type", help="Key type.")
    ] = KeyTypeChoice.ED25519,
    as_json: JsonOption = False,
) -> None:
    """Create a signing key."""
    with unit(ctx) as (rt, session):
        info = service.create_key(
            session,
            rt.key_store,
            rt.clock,
            name=name,
            key_type=key_type.key_type,
            actor=rt.operator_actor(),
            objects=rt.objects,
        )
    emit(as_json, asdict(_key_row(info)), f"created {info.name} v{info.version} ({info.key_type})")


@app.command("rotate")
def keys_rotate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Key name.")],
    as_json: JsonOption = False,
) -> None:
    """Add a new version of a key; older versions keep verifying."""
    with unit(ctx) as (rt, session):
        info = service.rotate_key(
            session,
            rt.key_store,
            rt.clock,
            name=name,
            actor=rt.operator_actor(),
            objects=rt.objects,
        )
    emit(as_json, asdict(_key_row(info)), f"rotated {info.name} to v{info.version}")


@app.command("list")
def keys_list(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help="Only this key.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List every key version."""
    with unit(ctx) as (rt, session):
        rows = [_key_row(v) for v in service.list_keys(session, rt.key_store, name)]
    lines = [f"{r.name:<24} v{r.version:<3} {r.key_type:<8} {r.kid}" for r in rows]
    emit(as_json, {"keys": [asdict(r) for r in rows]}, "\n".join(lines) if lines else "no keys")


@app.command("export-public")
def keys_export_public(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Key name.")],
    as_json: JsonOption = False,
) -> None:
    """Print the public JWK Set of every version of a key, and the newest key's did:key."""
    with unit(ctx) as (rt, session):
        jwks = service.public_jwks(session, rt.key_store, name)
    emit(as_json, asdict(jwks), json.dumps({"keys": jwks.keys}, indent=2) + f"\n{jwks.did}")
