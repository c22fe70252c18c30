"""``commons privacy export``: everything held on a subject, as JSON and optionally as a
PDF (a module of its own, so the other ``commons privacy`` commands never load the PDF
renderer and its fonts)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, emit, holder, operator, unit
from credit_commons.privacy.export import export_subject
from credit_commons.privacy.pdf import render_export_pdf

__all__ = ["app", "privacy_export"]

app = holder()


@app.command("export")
def privacy_export(
    ctx: typer.Context,
    token: Annotated[str, typer.Argument(help="Identity token idt_….")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the JSON here.", readable=False)
    ] = None,
    pdf: Annotated[
        Path | None, typer.Option("--pdf", help="Also write it as a PDF here.", readable=False)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Export everything held on a subject (JSON, and optionally PDF)."""
    with unit(ctx) as (rt, session):
        data = export_subject(session, rt, operator(), token).model_dump(mode="json")
        generated_at = rt.clock.now()
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    pdf_note = f"PDF written to {pdf} (mode 0600)"
    if pdf is not None:
        fd = os.open(pdf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(render_export_pdf(data, generated_at=generated_at))
    if out is not None:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        written = {"written": str(out)} | ({"pdf": str(pdf)} if pdf is not None else {})
        message = f"export written to {out} (mode 0600)"
        emit(as_json, written, message + (f"; {pdf_note}" if pdf is not None else ""))
    else:
        typer.echo(text)
        if pdf is not None:  # stdout holds the export itself: say where the PDF went aside
            typer.echo(pdf_note, err=True)
