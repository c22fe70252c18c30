"""``commons zk …``: the ZK statement registry (docs/zk.md).  Each command calls the service
function its HTTP route calls."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, emit, group, read_json_file, table, unit
from credit_commons.core.errors import ValidationError
from credit_commons.zk import registry

__all__ = ["app"]

app = group("zk", "Zero-knowledge predicates: the signed statement registry.")
statements_app = group("statements", "The ZK statement registry: list, show, register.")
app.add_typer(statements_app, name="statements")


@statements_app.command("list")
def statements_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the registered statements (newest version of each)."""
    with unit(ctx, read_only=True) as (rt, session):
        views = registry.list_statements(session, rt)
    rows = [v.model_dump(mode="json", exclude={"statement", "token"}) for v in views]
    text = table(
        rows,
        [
            ("id", "ID"),
            ("version", "VERSION"),
            ("setup_provenance", "SETUP"),
            ("registered_at", "REGISTERED"),
        ],
    )
    emit(as_json, [v.model_dump(mode="json") for v in views], text if rows else "no statements")


@statements_app.command("show")
def statements_show(
    ctx: typer.Context,
    statement_id: Annotated[str, typer.Argument(help="The statement id, e.g. score_at_least.")],
    as_json: JsonOption = False,
) -> None:
    """Show one statement: its document, its hash and its signed token."""
    with unit(ctx, read_only=True) as (rt, session):
        view, _ = registry.get_statement(session, rt, statement_id)
    doc = view.statement
    artefacts = doc.get("artefacts", {})
    lines = [
        f"{view.id} version {view.version} ({view.setup_provenance} setup), "
        f"document sha256 {view.document_sha256}",
        f"  credential {doc['credential']['vct']} claim {doc['credential']['claim']}",
        "  public inputs " + ", ".join(i["name"] for i in doc["public_inputs"]),
        *(f"  {role} {a['file']} sha256 {a['sha256']}" for role, a in sorted(artefacts.items())),
    ]
    emit(as_json, view.model_dump(mode="json"), "\n".join(lines))


@statements_app.command("register")
def statements_register(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Argument(help="A statement's JSON document (-: standard input).")
    ] = None,
    dev: Annotated[
        bool,
        typer.Option("--dev", help="Register the engine's statements from its manifest (dev)."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Register a statement, or a newer version of one (signed by the registry key; its
    artefacts' hashes checked against the engine's files), or the engine's four statements,
    whose setup is dev (refused in production)."""
    if (file is None) != dev:
        raise ValidationError("give a statement file or --dev")
    document = read_json_file(file, "the statement") if file is not None else None
    with unit(ctx) as (rt, session):
        actor = rt.operator_actor("zk")
        if document is None:
            views = registry.register_dev_statements(session, rt, actor=actor)
        else:
            views = [registry.register_statement(session, rt, document, actor=actor)]
    emit(
        as_json,
        [v.model_dump(mode="json") for v in views],
        "\n".join(f"registered {v.id} version {v.version}" for v in views) or "nothing new",
    )
