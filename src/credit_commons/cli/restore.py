"""``commons restore``: a backup into an empty instance, held in backup-restore mode until an
operator confirms (docs/operations.md, "Backup and restore")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from credit_commons.backup import report_json, restore_backup
from credit_commons.cli.support import JsonOption, emit, holder, progress_bar, runtime, unit
from credit_commons.core.db import dispose_engine, make_engine, make_sessionmaker
from credit_commons.core.errors import ValidationError
from credit_commons.ledger.restore_mode import confirm_restore, restore_hold

__all__ = ["app"]

app = holder()


@app.command("restore")
def restore_command(
    ctx: typer.Context,
    backup: Annotated[
        Path | None, typer.Argument(help="The backup directory (from `commons backup`).")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Database URL of the current key material (the live database, or a backup "
            "newer than the last erasure epoch): subject keys and erasures are taken from it.",
        ),
    ] = None,
    confirm: Annotated[
        bool,
        typer.Option("--confirm", help="Leave backup-restore mode: accept writes again."),
    ] = False,
    status: Annotated[
        bool, typer.Option("--status", help="Show whether the instance is in restore mode.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm the restore or --confirm.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Restore a backup into an empty instance, held in backup-restore mode (reads served,
    writes refused) until an operator confirms; or confirm it; or show the mode."""
    if sum((backup is not None, confirm, status)) != 1:
        raise ValidationError("give exactly one of BACKUP, --confirm and --status")
    if status:
        _status(ctx, as_json)
        return
    if not yes:
        raise ValidationError(
            "add --yes to confirm: "
            + (
                "the instance accepts writes again"
                if confirm
                else "the backup is loaded into COMMONS_DATABASE_URL, which must be empty"
            )
        )
    if confirm:
        _confirm(ctx, as_json)
        return
    assert backup is not None
    # Loading creates and fills the schema: as its owner (COMMONS_MIGRATION_DATABASE_URL),
    # as `commons db upgrade` does.
    with runtime(ctx, owner=True) as rt, progress_bar(as_json) as progress:
        tasks: dict[str, object] = {}

        def step(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)  # type: ignore[arg-type]

        engine = make_engine(source) if source is not None else None
        try:
            sessions = make_sessionmaker(engine) if engine is not None else None
            report = restore_backup(rt, backup, source=sessions, progress=step)
        finally:
            if engine is not None:
                dispose_engine(engine)
    emit(
        as_json,
        report_json(report),
        f"restored backup {report.backup_id}: {report.rows} rows ({report.backend}, revision "
        f"{report.revision}); log audited: size {report.log_size}, root {report.log_root}, "
        f"{report.checkpoints_audited} checkpoints; subject keys {report.keys_updated} kept, "
        f"{report.keys_deleted} deleted; {report.erasures_applied} erasures applied again; "
        f"published-checkpoint file: {report.published_file}.\n"
        "backup-restore mode: reads served, writes refused; grant the service role its "
        "privileges (`commons db grant-service-role`), check, then "
        "`commons restore --confirm --yes`",
    )


def _status(ctx: typer.Context, as_json: bool) -> None:
    with unit(ctx, read_only=True) as (_rt, session):
        hold = restore_hold(session)
    data = {"mode": "normal"} if hold is None else hold.to_json()
    emit(
        as_json,
        data,
        "normal: writes accepted"
        if hold is None
        else f"backup_restore: restored from {hold.backup_id} (log size {hold.log_size}) "
        f"at {hold.restored_at.isoformat()}; writes refused until `commons restore "
        "--confirm --yes`",
    )


def _confirm(ctx: typer.Context, as_json: bool) -> None:
    with unit(ctx) as (rt, session):
        event = confirm_restore(session, actor=rt.operator_actor(), now=rt.clock.now())
    emit(
        as_json,
        {"mode": "normal", "event_id": event},
        f"restore confirmed (event {event}): writes accepted; the log sequences again",
    )
