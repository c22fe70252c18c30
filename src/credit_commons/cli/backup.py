"""``commons backup OUT``: a consistent snapshot of the instance (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from credit_commons.backup import create_backup
from credit_commons.cli.support import JsonOption, emit, holder, progress_bar, runtime

__all__ = ["app"]

app = holder()


@app.command("backup")
def backup_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="New directory to write the backup to.")],
    as_json: JsonOption = False,
) -> None:
    """Back up the instance: the database (one snapshot), key metadata, the log's tiles and
    checkpoint, a manifest of hashes; secrets are left out and named (never overwrites)."""
    with runtime(ctx) as rt, progress_bar(as_json) as progress:
        tasks: dict[str, object] = {}

        def step(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)  # type: ignore[arg-type]

        manifest = create_backup(rt, out, step)
    log, database = manifest["log"], manifest["database"]
    emit(
        as_json,
        manifest,
        f"backup {manifest['backup_id']} written to {out.absolute()}: "
        f"{sum(database['rows'].values())} rows ({database['backend']}, revision "
        f"{database['revision']}), log size {log['size']} root {log['root']}, "
        f"{len(manifest['parts'])} parts hashed; secrets not included: "
        + ", ".join(s["secret"] for s in manifest["secrets_excluded"]),
    )
