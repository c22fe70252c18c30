"""``commons privacy …``: data-subject requests as an operator — export, erasure, the
erasure epochs, restoring a backup, retention (docs/privacy.md)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from credit_commons.cli.support import (
    JsonOption,
    emit,
    group,
    lazy,
    operator,
    progress_bar,
    runtime,
    unit,
)
from credit_commons.core.db import dispose_engine, make_engine, make_sessionmaker
from credit_commons.core.errors import ValidationError
from credit_commons.privacy.epochs import close_epoch, list_epochs
from credit_commons.privacy.erasure import erase_subject
from credit_commons.privacy.restore import restore_from
from credit_commons.privacy.retention import run_retention

__all__ = ["app"]

# `export` has a module of its own: only it needs the PDF renderer and its fonts.
app = group(
    "privacy",
    "Data-subject requests: export and erasure.",
    cls=lazy(
        [
            ("export", "privacy_export", False),
            ("erase", None, False),
            ("close-epoch", None, False),
            ("restore", None, False),
            ("epochs", None, False),
            ("retention", None, True),
        ]
    ),
)


@app.command("erase")
def privacy_erase(
    ctx: typer.Context,
    token: Annotated[str, typer.Argument(help="Identity token idt_….")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Erase a subject: destroy their keys, links and tokens (cannot be undone)."""
    if not yes:
        raise ValidationError("erasure cannot be undone; add --yes to confirm")
    with unit(ctx) as (rt, session):
        receipt = erase_subject(session, rt, operator(), token)
    emit(
        as_json,
        receipt.model_dump(mode="json"),
        f"erased {token}; event {receipt.event_id}; epoch {receipt.epoch}: unreadable in "
        f"every backup once the epoch closes, due {receipt.unreadable_in_backups_after}",
    )


@app.command("close-epoch")
def privacy_close_epoch(
    ctx: typer.Context,
    batch: Annotated[int, typer.Option("--batch", min=1, max=100_000)] = 1000,
    as_json: JsonOption = False,
) -> None:
    """Close the erasure epoch now: rotate the master key, rewrap every subject key, destroy
    the old version (resumable: a close that was interrupted is finished first)."""
    with runtime(ctx) as rt, progress_bar(as_json) as progress:
        task = progress.add_task("rewrapping subject keys", total=None)
        report = close_epoch(
            rt,
            batch=batch,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    emit(
        as_json,
        asdict(report),
        f"epoch {report.epoch} {report.state}: {report.erasures} erasures, "
        f"{report.rewrapped} subject keys rewrapped to master version {report.kek_version}, "
        f"versions {report.destroyed_versions} destroyed",
    )


@app.command("restore")
def privacy_restore(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="Database URL of the current key material: the live database, or a backup "
            "newer than the last erasure epoch.",
        ),
    ],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: COMMONS_DATABASE_URL is the restored copy.")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, max=100_000)] = 1000,
    as_json: JsonOption = False,
) -> None:
    """After restoring a backup into COMMONS_DATABASE_URL: take its subject keys from the
    current key material and apply the erasures made since, so every living subject opens
    and no erased one does (docs/operations.md)."""
    if not yes:
        raise ValidationError(
            "restore rewrites the subject keys of COMMONS_DATABASE_URL (the restored copy) "
            "from --from (the current key material) and erases again; add --yes to confirm"
        )
    with runtime(ctx) as rt:
        engine = make_engine(source)
        try:
            counts = restore_from(rt, make_sessionmaker(engine), batch=batch)
        finally:
            dispose_engine(engine)
    emit(
        as_json,
        asdict(counts),
        f"subject keys: {counts.keys_updated} taken from the current key material, "
        f"{counts.keys_deleted} deleted; {counts.erasures_applied} erasures applied again",
    )


@app.command("epochs")
def privacy_epochs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
    as_json: JsonOption = False,
) -> None:
    """List the newest erasure epochs: open, closing or closed, and when each is due."""
    with unit(ctx, read_only=True) as (rt, session):
        rows = list_epochs(session, rt, limit)
    emit(
        as_json,
        [asdict(r) for r in rows],
        "\n".join(
            f"{r.epoch:>6} {r.state:<8} erasures {r.erasures:<5} opened {r.opened_at}"
            f" due {r.due_at}" + (f" closed {r.closed_at}" if r.closed_at else "")
            for r in rows
        ),
    )


retention_app = typer.Typer(help="Retention of personal data.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Delete what is past its retention window now (the worker does it hourly)."""
    with unit(ctx) as (rt, session):
        counts = run_retention(session, rt)
    emit(as_json, counts, ", ".join(f"{k}: {v} deleted" for k, v in counts.items()))
