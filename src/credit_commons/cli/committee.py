"""``commons committee …``: the checkpoint committee (docs/log.md "Checkpoint committee").

On the dealer's machine ``deal``; on the log ``register``, ``bind`` and ``show``; anywhere
``verify``;
on each member node ``member import``, ``member status`` and ``member serve``.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import httpx
import typer

from credit_commons.cli.support import JsonOption, emit, group, read_text_file, runtime, unit
from credit_commons.core.errors import ValidationError
from credit_commons.core.files import create_private, path_error
from credit_commons.core.logging import configure_logging
from credit_commons.keys import ServiceIdentity
from credit_commons.ledger import committee, committee_member, committee_service
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.committee_setup import CommitteeGroup, MemberShare, deal_files

__all__ = ["app"]

app = group("committee", "The checkpoint committee: t-of-n BLS cosignatures on checkpoints.")
member_app = group("member", "A committee member node: its share and its signing loop.")
app.add_typer(member_app)

_NODE_HELP = (
    "The full node (its registered service instance, node-…) that holds member 1's share, "
    "then member 2's, …: repeat once per member."
)


def _read_json(path: Path, what: str) -> object:
    try:
        return json.loads(read_text_file(path, what))
    except json.JSONDecodeError as e:
        raise ValidationError(f"{what} is not JSON") from e


@app.command("deal")
def committee_deal(
    out: Annotated[Path, typer.Option("--out", help="A new directory for the files.")],
    threshold: Annotated[int, typer.Option("--threshold", "-t", min=1, max=255)],
    members: Annotated[int, typer.Option("--members", "-n", min=1, max=255)],
    name: Annotated[
        str, typer.Option("--name", help="The committee's note key name.")
    ] = "commons-committee",
    as_json: JsonOption = False,
) -> None:
    """Deal a t-of-n committee key (trusted dealer): writes group.json (public) and
    member-<i>.json (each member's secret share, mode 0600) into --out, then forgets them.

    Hand each share file to its member out of band and destroy it once imported."""
    group_desc, shares = deal_files(name, threshold, members)
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=False)
        create_private(out / "group.json", json.dumps(group_desc.to_json(), indent=2).encode())
        for share in shares:
            data = json.dumps(share.to_json(), indent=2).encode()
            create_private(out / f"member-{share.index}.json", data)
    except OSError as e:
        raise path_error(e, "write") from e
    emit(
        as_json,
        {"group": str(out / "group.json"), "vkey": group_desc.vkey, "members": members},
        f"committee {name}: {threshold} of {members}; group file {out / 'group.json'}\n"
        f"group vkey {group_desc.vkey}",
    )


@app.command("register")
def committee_register(
    ctx: typer.Context,
    group_file: Annotated[Path, typer.Argument(help="The dealer's group.json.")],
    nodes: Annotated[list[str], typer.Option("--node", help=_NODE_HELP)],
    as_json: JsonOption = False,
) -> None:
    """Register a committee with this log: the first takes effect at once, a later one after
    COMMONS_COMMITTEE_NOTICE seconds (a committee.changed event announces it).  Each member
    is bound to the full node that holds its share (--node, once per member in index
    order, each with a registered service key): its partials need that node's token."""
    group_desc = CommitteeGroup.from_json(_read_json(group_file, "the group file"))
    with unit(ctx) as (rt, session):
        now = rt.clock.now()
        registered = committee_service.register_committee(
            session, rt, group_desc, nodes=nodes, now=now
        )
    view = {**registered.to_json(now), "nodes": nodes}
    emit(
        as_json,
        view,
        f"committee {group_desc.name} version {registered.version}: "
        f"{group_desc.threshold} of {group_desc.size}, in effect from {view['effective_at']}",
    )


@app.command("bind")
def committee_bind(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument(help="The committee version (commons committee show).")],
    nodes: Annotated[list[str], typer.Option("--node", help=_NODE_HELP)],
    as_json: JsonOption = False,
) -> None:
    """Bind the members of a registered committee version to their full nodes again (one
    registered before members were bound, or a member that moved to another node); a
    committee.member_bound event for each."""
    with unit(ctx) as (rt, session):
        committee_service.bind_member_nodes(session, rt, version, nodes, now=rt.clock.now())
    emit(
        as_json,
        {"version": version, "nodes": nodes},
        f"committee version {version}: members bound to {', '.join(nodes)}",
    )


@app.command("show")
def committee_show(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every registered committee version and the current signing task."""
    with unit(ctx, read_only=True) as (rt, session):
        now = rt.clock.now()
        versions = [c.to_json(now) for c in committee_service.committees(session)]
        _, task = committee_service.current_task(session, now)
    data = {
        "committees": versions,
        "task": None
        if task is None
        else {"size": task.size, "root": task.root.b64(), "partials": task.partials},
    }
    lines = [
        f"v{c['version']} {c['name']}: {c['threshold']} of {c['members']}, "
        f"{'in effect' if c['in_effect'] else 'pending'} from {c['effective_at']}"
        for c in versions
    ] or ["no committee"]
    if task is not None:
        lines.append(f"task: size {task.size}, {task.partials} partials")
    emit(as_json, data, "\n".join(lines))


@app.command("verify")
def committee_verify(
    note_file: Annotated[Path, typer.Argument(help="A checkpoint note (-: standard input).")],
    group_vkey: Annotated[
        str, typer.Option("--group-key", help="The committee's group vkey (pinned).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Verify a checkpoint's committee signature with the group key alone."""
    opened = committee.verify_committee_signature(
        read_text_file(note_file, "the checkpoint note"), group_vkey
    )
    checkpoint = Checkpoint.parse(opened.text)
    emit(
        as_json,
        {"origin": checkpoint.origin, "size": checkpoint.size, "root": checkpoint.root_hash.b64()},
        f"committee signature valid: {checkpoint.origin} size {checkpoint.size}",
    )


@member_app.command("import")
def member_import(
    ctx: typer.Context,
    share_file: Annotated[Path, typer.Argument(help="This member's share file from the dealer.")],
    as_json: JsonOption = False,
) -> None:
    """Keep this node's share, wrapped under its master key (then destroy the file)."""
    share = MemberShare.from_json(_read_json(share_file, "the share file"))
    with unit(ctx) as (rt, session):
        committee_member.import_share(session, rt, share, now=rt.clock.now())
    emit(
        as_json,
        {"committee": share.group.name, "member": share.index, "vkey": share.group.vkey},
        f"member {share.index} of {share.group.name} imported; destroy {share_file}",
    )


@member_app.command("status")
def member_status(
    ctx: typer.Context,
    group_key: Annotated[str | None, typer.Option("--group", help="Group key (hex).")] = None,
    as_json: JsonOption = False,
) -> None:
    """What this member holds of the log and the last tree head it signed."""
    with unit(ctx, read_only=True) as (rt, session):
        share = committee_member.load_share(session, rt, group_key)
        status = {"member": share.index, **committee_member.member_status(session, share.group)}
    emit(
        as_json,
        status,
        f"member {share.index} of {status['committee']}: {status['leaves_held']} leaves held, "
        f"last signed size {status['signed_size']}",
    )


@member_app.command("serve")
def member_serve(
    ctx: typer.Context,
    log_url: Annotated[str, typer.Option("--log", help="The log's base URL.")],
    log_key: Annotated[str, typer.Option("--log-key", help="The log's vkey (pinned).")],
    service_key: Annotated[
        Path,
        typer.Option(
            "--service-key",
            help="This member's full node's service key file (the node's "
            "--data/service-key.json): its partials carry that node's token.",
        ),
    ],
    tiles_url: Annotated[
        str | None, typer.Option("--tiles", help="Where to fetch entries (default: the log).")
    ] = None,
    group_key: Annotated[str | None, typer.Option("--group", help="Group key (hex).")] = None,
    poll: Annotated[float, typer.Option("--poll", min=0.05, max=3600)] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Poll the log's signing task; verify its root against this node's own copy of the
    log; sign and send a partial with the node's service token (scope partials:write)."""
    identity = ServiceIdentity(service_key)
    if identity.service != "node":
        raise ValidationError(f"{service_key} is a {identity.service} key, not a full node's")
    with runtime(ctx) as rt:
        configure_logging(rt.settings.log_level)
        tiles = (
            None
            if tiles_url is None
            else httpx.Client(
                base_url=tiles_url.rstrip("/") + "/",
                timeout=10.0,
                follow_redirects=False,
                trust_env=False,
            )
        )
        member = committee_member.CommitteeMember(
            rt,
            log_url=log_url,
            log_vkey=log_key,
            identity=identity,
            tiles_client=tiles,
            group=group_key,
        )
        if once:
            report = member.run_once()
            emit(
                as_json,
                {
                    "status": report.status,
                    "size": report.size,
                    "reason": report.reason,
                    "answer": report.answer,
                },
                f"{report.status} {report.size or ''} {report.reason or ''}".strip(),
            )
            return

        def stop(_signum: int, _frame: FrameType | None) -> None:
            member.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        emit(
            as_json,
            {"member": member.share.index, "committee": member.group.name, "log": log_url},
            f"member {member.share.index} of {member.group.name} serving {log_url}",
        )
        member.serve(poll)
