"""``commons rules …``: the reputation rule-set registry (docs/reputation.md "Rule set").
Each command calls the service function its HTTP route calls."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, emit, group, read_json_file, table, unit
from credit_commons.core.errors import ValidationError
from credit_commons.reputation import rules_service

__all__ = ["app"]

app = group("rules", "Reputation rule sets: the signed, time-locked registry.")


@app.command("list")
def rules_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List every registered rule set (every version), each signature verified."""
    with unit(ctx, read_only=True) as (rt, session):
        views = rules_service.list_rule_sets(session, rt)
    rows = [v.model_dump(mode="json", exclude={"rule_set", "token"}) for v in views]
    text = table(
        rows,
        [
            ("id", "ID"),
            ("version", "VERSION"),
            ("valid_from", "VALID FROM"),
            ("published_at", "PUBLISHED"),
            ("dev", "DEV"),
            ("hash", "HASH"),
        ],
    )
    emit(as_json, [v.model_dump(mode="json") for v in views], text if rows else "no rule sets")


@app.command("show")
def rules_show(
    ctx: typer.Context,
    rule_set_id: Annotated[
        str, typer.Argument(help="The rule set id, e.g. shg-rules, or 'active'.")
    ] = "active",
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="A version (default: the newest).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show one rule set (the one in effect now by default): its hash, validity and signed
    token."""
    with unit(ctx, read_only=True) as (rt, session):
        if rule_set_id == "active" and version is None:
            stored = rules_service.active_rule_set(session, rt, rt.clock.now())
        else:
            stored = rules_service.get_rule_set(session, rt, rule_set_id, version)
    view, rules = stored.view, stored.rule_set
    lines = [
        f"{view.id} version {view.version}{' (dev)' if view.dev else ''}, hash {view.hash}",
        f"  in effect from {view.valid_from} (published {view.published_at},"
        f" time lock {rules.time_lock_days} days)",
        "  contexts " + ", ".join(rules.contexts),
        f"  aura domain {rules.aura.domain}, tiers "
        + ", ".join(t.name for t in rules.aura.tiers)
        + f", credential {rules.aura.output_credential_type}",
    ]
    emit(as_json, view.model_dump(mode="json"), "\n".join(lines))


@app.command("register")
def rules_register(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(help="A rule set's JSON (-: standard input); none with --dev: the example."),
    ] = None,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="A development registration: the time lock is not enforced (refused in"
            " production).  Without FILE, the package's example rule set, in effect from now.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Register a rule set as a new version of its id, signed by the platform's
    reputation-rules key: its validFrom at least timeLockDays from now, its version above
    every registered one."""
    if file is None and not dev:
        raise ValidationError("give a rule set file, or --dev for the example")
    document = read_json_file(file, "the rule set") if file is not None else None
    with unit(ctx) as (rt, session):
        actor = rt.operator_actor("reputation")
        if document is None:
            view = rules_service.register_dev_rule_set(session, rt, actor=actor)
        else:
            view = rules_service.register_rule_set(session, rt, document, actor=actor, dev=dev)
    emit(
        as_json,
        view.model_dump(mode="json") if view is not None else None,
        f"registered {view.id} version {view.version}, in effect from {view.valid_from},"
        f" hash {view.hash}"
        if view is not None
        else "nothing new: the example is the newest version",
    )
