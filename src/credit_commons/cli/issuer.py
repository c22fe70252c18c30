"""``commons issuer …``: the credential catalogue, batch issuance, status changes and the
trust list (docs/credentials.md)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import (
    JsonOption,
    emit,
    group,
    operator,
    read_json_file,
    runtime,
    unit,
)
from credit_commons.core.errors import ValidationError
from credit_commons.core.files import path_error
from credit_commons.core.heap import freeze_startup_heap
from credit_commons.issuer import batch as issuer_batch
from credit_commons.issuer import registry
from credit_commons.issuer import service as issuer_service
from credit_commons.issuer.build_pool import BuildPool, default_workers
from credit_commons.verifier import trust

__all__ = ["app"]

app = group("issuer", "The issuer: credential catalogue, batch issuance, trusted issuers.")
issuer_type_app = typer.Typer(help="Credential types.", no_args_is_help=True)
app.add_typer(issuer_type_app, name="type")


@issuer_type_app.command("list")
def issuer_type_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the credential types in the catalogue."""
    with unit(ctx) as (rt, session):
        types = [
            t.view().model_dump(mode="json", by_alias=True)
            for t in issuer_service.list_types(session, rt)
        ]
    emit(as_json, types, "\n".join(f"{t['name']:<32} {t['vct']}" for t in types))


@issuer_type_app.command("show")
def issuer_type_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Type name.")],
    as_json: JsonOption = False,
) -> None:
    """Show one credential type (schema and disclosable paths)."""
    with unit(ctx) as (rt, session):
        view = issuer_service.get_type(session, rt, name).view()
    data = view.model_dump(mode="json", by_alias=True)
    emit(as_json, data, json.dumps(data, indent=2))


@issuer_type_app.command("put")
def issuer_type_put(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A JSON type definition.", readable=False)],
    as_json: JsonOption = False,
) -> None:
    """Add or replace a credential type from a JSON file (name, vct, schema, disclosable)."""
    definition = read_json_file(file, "the type definition", not_json="is not a JSON file")
    if not isinstance(definition, dict):
        raise ValidationError("the type definition must be a JSON object")
    with unit(ctx) as (rt, session):
        created = issuer_service.put_type(session, rt, operator(), definition)
    emit(
        as_json,
        created.view().model_dump(mode="json", by_alias=True),
        f"stored {created.name} ({created.vct})",
    )


@app.command("issue-batch")
def issuer_issue_batch(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(help="JSON lines: {type, subject, claims, holder_jwk}.", readable=False),
    ],
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Credentials per transaction.")] = 500,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the results here (default stdout).", readable=False),
    ] = None,
    skip: Annotated[
        int, typer.Option(min=0, help="Skip the first N lines (already committed: resume).")
    ] = 0,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=32,
            help="Processes that build the SD-JWTs while this one writes (0: none; "
            "default: one fewer than the CPUs, at most 2; none for a --batch below 100).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Issue credentials from a JSON-lines file, --batch per committed transaction.

    Each result is written as a JSON line ``{"line", "credential_id", "credential", ...}``
    as soon as its transaction commits; progress goes to stderr.  On an error nothing of the
    failing transaction is kept, and stderr says which lines were committed and how to
    resume (``--skip``); with --json the error is a problem+json line.  Results are always
    JSON lines."""
    del as_json  # read by main() for the error format

    count = default_workers() if workers is None else workers
    sink = out.open("a" if skip else "w", encoding="utf-8") if out is not None else sys.stdout
    try:
        with (
            runtime(ctx) as rt,
            file.open(encoding="utf-8") as lines,
            contextlib.ExitStack() as stack,
        ):
            # The workers start with the first batch that needs them (MIN_JOBS or more).
            builders = stack.enter_context(BuildPool(count)) if count else None
            freeze_startup_heap()
            issuer_batch.issue_lines(
                rt,
                operator(),
                lines,
                batch=batch,
                skip=skip,
                write=lambda line: (sink.write(line + "\n"), sink.flush()),
                progress=lambda message: typer.echo(message, err=True),
                builders=builders,
            )
    except OSError as e:
        # The lines or the results file: the error names which path.
        raise path_error(e) from e
    finally:
        if out is not None:
            sink.close()


def _status_command(action: str, what: str) -> None:
    # One command per status change, calling the same service function as the HTTP route.
    def command(
        ctx: typer.Context,
        credential_id: Annotated[str, typer.Argument(help="crd_…")],
        as_json: JsonOption = False,
    ) -> None:
        with unit(ctx) as (rt, session):
            data = registry.change_status(
                session, rt, operator(), credential_id, registry.StatusAction(action)
            )
        emit(as_json, data.model_dump(mode="json"), f"{credential_id}: {data.status}")

    command.__doc__ = what
    app.command(action)(command)


for _action, _what in (
    ("revoke", "Revoke a valid or suspended credential (final: it is never valid again)."),
    ("suspend", "Suspend a valid credential (reversible with reinstate)."),
    ("reinstate", "Reinstate a suspended credential (a revoked one cannot be)."),
):
    _status_command(_action, _what)


issuer_trust_app = typer.Typer(help="The trust list: issuers whose credentials verify here.")
app.add_typer(issuer_trust_app, name="trust")


@issuer_trust_app.command("add")
def issuer_trust_add(
    ctx: typer.Context,
    issuer: Annotated[str, typer.Argument(help="An https issuer URL, a did:web or a did:key.")],
    as_json: JsonOption = False,
) -> None:
    """Trust an issuer (recorded as issuer.trusted)."""
    with unit(ctx) as (rt, session):
        added = trust.add_trusted_issuer(session, rt, operator(), issuer)
    emit(
        as_json,
        added.model_dump(mode="json"),
        f"trusted {added.issuer} ({added.kind}, {added.id})",
    )


@issuer_trust_app.command("list")
def issuer_trust_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the trusted issuers."""
    with unit(ctx) as (rt, session):
        listed = trust.list_trusted_issuers(session, rt, operator())
    emit(
        as_json,
        [t.model_dump(mode="json") for t in listed],
        "\n".join(f"{t.id}  {t.kind:<8} {t.issuer}" for t in listed),
    )


@issuer_trust_app.command("remove")
def issuer_trust_remove(
    ctx: typer.Context,
    issuer: Annotated[str, typer.Argument(help="The issuer, or its entry id (tis_...).")],
    as_json: JsonOption = False,
) -> None:
    """Stop trusting an issuer (recorded as issuer.untrusted)."""
    with unit(ctx) as (rt, session):
        removed = trust.remove_trusted_issuer(session, rt, operator(), issuer)
    emit(as_json, removed.model_dump(mode="json"), f"no longer trusted: {removed.issuer}")
