"""``commons vault …``: the vault's master keys — status, rotation, rewrapping, an HSM's
first key (docs/operations.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from credit_commons.cli.support import (
    JsonOption,
    emit,
    group,
    progress_bar,
    runtime,
    settings,
    unit,
)
from credit_commons.core.errors import ConfigurationError
from credit_commons.runtime import build_kms

__all__ = ["app"]

app = group("vault", "The vault: master keys, rotation, rewrap.")


@app.command("status")
def vault_status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the KMS, its master-key versions and subject keys per version."""
    with unit(ctx, read_only=True) as (rt, session):
        status = rt.vault.status(session)
    by_version = status["subject_keys_by_version"]
    emit(
        as_json,
        status,
        f"KMS {status['kek_id']}: versions {status['versions']}, current "
        f"{status['current_version']}, min decrypt {status['min_decrypt_version']}; "
        f"subject keys by version {by_version}",
    )


@app.command("rotate")
def vault_rotate(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Add a new master-key version; new subject keys are wrapped with it."""
    with runtime(ctx) as rt:
        version = rt.vault.kms.rotate()
    emit(
        as_json,
        {"current_version": version},
        f"master key now at version {version}; run `commons vault rewrap` to move old keys",
    )


@app.command("rewrap")
def vault_rewrap(
    ctx: typer.Context,
    batch: Annotated[int, typer.Option("--batch", min=1, max=100_000)] = 1000,
    retire: Annotated[
        bool,
        typer.Option("--retire", help="Afterwards refuse older master versions for decryption."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Rewrap every subject key under the newest master version (resumable)."""
    with runtime(ctx) as rt:
        with progress_bar(as_json) as progress:
            task = progress.add_task("rewrapping", total=None)
            report = rt.vault.rewrap(
                rt.sessions,
                batch=batch,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        if retire and report.remaining == 0:
            rt.vault.kms.set_min_decrypt_version(report.target_version)
        min_version = rt.vault.kms.min_decrypt_version
    emit(
        as_json,
        {
            "rewrapped": report.rewrapped,
            "remaining": report.remaining,
            "target_version": report.target_version,
            "min_decrypt_version": min_version,
        },
        f"rewrapped {report.rewrapped} subject keys to version {report.target_version}"
        + (f"; {report.remaining} remain" if report.remaining else ""),
    )


@app.command("init-hsm")
def vault_init_hsm(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Create master key v1 and the pepper inside the configured PKCS#11 token (once)."""
    config = settings(ctx)
    if config.kms != "pkcs11":
        raise ConfigurationError("init-hsm needs COMMONS_KMS=pkcs11")
    with runtime(ctx) as rt:
        kms = build_kms(config, rt.master, create_missing=True)
        data = {
            "kek_id": kms.kek_id,
            "current_version": kms.current_version(),
            "pepper_fingerprint": kms.pepper_fingerprint(),
        }
    emit(as_json, data, f"HSM ready: {data['kek_id']} v{data['current_version']}")
