"""``commons log …``: the transparency log — status and recovery after a restore,
sequencing and checkpoints, proofs, entries and receipts, offline verification, the audit
(docs/log.md).  :func:`continuity` and :func:`warn_if_diverged` serve ``serve`` and
``worker`` too."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Annotated

import httpx
import typer

from credit_commons.cli.support import (
    JsonOption,
    UsageError,
    emit,
    group,
    progress_bar,
    read_text_file,
    runtime,
    unit,
)
from credit_commons.core.db import transaction
from credit_commons.core.errors import ExitCode, NotFoundError, ValidationError
from credit_commons.core.files import path_error
from credit_commons.jobs import default_steps
from credit_commons.ledger import service as log_service
from credit_commons.ledger.audit import audit_log
from credit_commons.ledger.continuity import Continuity, ContinuityGuard
from credit_commons.ledger.extension import parse_checkpoint_note, verify_extension
from credit_commons.ledger.extension_inputs import local_extension_inputs, remote_extension_inputs
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.receipts import PendingReceipt, verify_any_receipt
from credit_commons.ledger.recovery import (
    DirectoryTiles,
    HttpTiles,
    TileSource,
    declare_new_origin,
    replay,
)
from credit_commons.ledger.restore_mode import restore_hold
from credit_commons.ledger.schemas import ConsistencyProof, InclusionProof
from credit_commons.ledger.sequencer import sequence_pending
from credit_commons.ledger.steps import default_probes
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime

__all__ = ["app", "continuity", "refuse_if_held", "warn_if_diverged"]

app = group("log", "The transparency log.")


def continuity(rt: Runtime) -> Continuity:
    """The database's tree beside every record of what the log published."""
    identity = log_identity(rt)
    with transaction(rt.read_sessions) as session:
        return ContinuityGuard(rt.settings).assess(session, identity, rt.tile_cache)


def refuse_if_held(rt: Runtime) -> None:
    """Refuse to sequence or sign while the database is held in backup-restore mode
    (``service.restore_mode``, exit 9; ledger/restore_mode.py)."""
    with transaction(rt.read_sessions) as session:
        held = restore_hold(session)
    if held is not None:
        raise held.error()


def warn_if_diverged(rt: Runtime) -> None:
    """At a start that keeps running (serve, worker): name the gap on stderr, once."""
    gap = continuity(rt).gap
    if gap is not None:
        error = gap.error()
        typer.echo(
            f"warning: {error.code}: {error.detail}; the log will not sequence or sign until "
            f"recovered; hint: {error.hint}",
            err=True,
        )


@app.command("status")
def log_status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Compare the database's tree with what this log published (exit 7 if it does not
    continue it: a restored backup; docs/log.md)."""
    with runtime(ctx) as rt:
        found = continuity(rt)
    data = found.to_json()
    published = found.published
    text = (
        f"ok: the database (size {found.database_size}) continues the published log"
        + (f" (newest: size {published.size}, {published.source})" if published else "")
        if found.gap is None
        else f"diverged: {found.gap.detail()}"
    )
    emit(as_json, data, "\n".join([text, *(f"warning: {w}" for w in found.warnings)]))
    if found.gap is not None:
        raise typer.Exit(ExitCode.INTEGRITY)


@app.command("replay")
def log_replay(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="Published tiles: a directory holding tile/entries/… (tlog-tiles), or the "
            "base URL of a tlog-tiles server.",
        ),
    ],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: append the leaves to COMMONS_DATABASE_URL.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """After a restore: append the published leaves the database lacks from published
    tiles, check the published root, and let the log continue (docs/log.md)."""
    if not yes:
        raise ValidationError(
            "replay appends the published leaves to COMMONS_DATABASE_URL; add --yes to confirm"
        )
    tiles: TileSource
    client = None
    if re.match(r"https?://", source):
        client = httpx.Client(base_url=source.rstrip("/") + "/", timeout=30.0)
        tiles = HttpTiles(client)
    else:
        directory = Path(source)
        try:
            os.listdir(directory / "tile" / "entries")  # the tlog-tiles layout, readable
        except OSError as e:
            raise path_error(e, "read the tile directory") from e
        tiles = DirectoryTiles(directory)
    try:
        with runtime(ctx) as rt:
            identity = log_identity(rt)
            with transaction(rt.sessions) as session:
                report = replay(
                    session,
                    ContinuityGuard(rt.settings),
                    identity,
                    tiles,
                    clock=rt.clock,
                    actor=rt.operator_actor(),
                )
    finally:
        if client is not None:
            client.close()
    data = report.to_json()
    emit(
        as_json,
        data,
        f"replayed {data['replayed']} leaves [{report.from_size}, {report.to_size}): the "
        f"database's root at {report.to_size} is the published one; "
        f"{report.events_missing} of their events' bodies are not in this database",
    )


@app.command("new-origin")
def log_new_origin(
    ctx: typer.Context,
    origin: Annotated[
        str, typer.Option("--origin", help="The new log's origin, never used before.")
    ],
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Confirm: freeze the current origin for good."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """After a restore whose lost leaves cannot be replayed: freeze the current origin and
    continue the log under a declared new one (docs/log.md)."""
    if not yes:
        raise ValidationError(
            "a new origin freezes the current one for good (it is never signed again); "
            "add --yes to confirm"
        )
    with runtime(ctx) as rt:
        identity = log_identity(rt)
        with transaction(rt.sessions) as session:
            declared = declare_new_origin(
                session,
                ContinuityGuard(rt.settings),
                identity,
                origin,
                clock=rt.clock,
                actor=rt.operator_actor(),
            )
    lost = declared.lost_leaves
    emit(
        as_json,
        declared.to_json(),
        f"origin {declared.frozen_origin} frozen at published size {declared.published_size}"
        + (f" ({lost} leaves lost)" if lost is not None else "")
        + f"; the log continues as {declared.origin}: set COMMONS_LOG_ORIGIN to it or unset it, "
        "give witnesses its key, and restart",
    )


@app.command("sequence")
def log_sequence(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Sequence every pending event into the log now."""
    with runtime(ctx) as rt:
        # As the worker does before its first pass: a witness further than this database
        # says so now, before leaves that differ from the published ones are appended.
        for probe in default_probes(rt):
            probe(rt, 0)
        continuity(rt).check()
        refuse_if_held(rt)
        result = sequence_pending(rt.sessions, limit=rt.settings.log_batch_size)
    emit(
        as_json,
        {"sequenced": result.appended, "size": result.size, "root": result.root.b64()},
        f"sequenced {result.appended}; log size {result.size}",
    )


@app.command("checkpoint")
def log_checkpoint(
    ctx: typer.Context,
    publish: Annotated[
        bool, typer.Option("--publish", help="Sequence and sign a new checkpoint first.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Print the latest checkpoint (signed note) and the log's verifier key."""
    with runtime(ctx) as rt:
        if publish:
            continuity(rt).check()
            refuse_if_held(rt)
            worker = LogWorker(rt, steps=default_steps(rt))
            while True:
                report = worker.run_once(force_checkpoint=True)
                if report.diverged is not None:
                    raise report.diverged.error()
                if not report.backlog:
                    break
        identity = log_identity(rt)
        origin, vkey = identity.origin, identity.vkey
        with transaction(rt.sessions) as session:
            row = log_service.latest_checkpoint(session)
            if row is None:
                raise NotFoundError(
                    "the log has no checkpoint yet", hint="run `commons log checkpoint --publish`"
                )
            note = log_service.checkpoint_with_cosignatures(session, row)
    emit(
        as_json,
        {"checkpoint": note, "size": row.size, "origin": origin, "log_key": vkey},
        note.rstrip("\n"),
    )


def _proof_output(as_json: bool, data: InclusionProof | ConsistencyProof) -> None:
    text = "\n".join(data.proof) if data.proof else "(empty proof)"
    emit(as_json, data.model_dump(mode="json", by_alias=True), text)


@app.command("prove-inclusion")
def log_prove_inclusion(
    ctx: typer.Context,
    index: Annotated[int, typer.Option("--index", min=0, help="Leaf index.")],
    size: Annotated[int | None, typer.Option("--size", min=1, help="Tree size.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Print the inclusion proof of a leaf (base64 hashes, leaf side first)."""
    with unit(ctx) as (_rt, session):
        data = log_service.inclusion_proof(session, index, size)
    _proof_output(as_json, data)


@app.command("prove-consistency")
def log_prove_consistency(
    ctx: typer.Context,
    from_: Annotated[int, typer.Option("--from", min=1, help="Older tree size.")],
    to: Annotated[int | None, typer.Option("--to", min=1, help="Newer tree size.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Print the consistency proof between two tree sizes."""
    with unit(ctx) as (_rt, session):
        data = log_service.consistency_proof(session, from_, to)
    _proof_output(as_json, data)


@app.command("verify-consistency")
def log_verify_consistency(
    ctx: typer.Context,
    old_checkpoint: Annotated[
        Path,
        typer.Argument(
            help="A checkpoint (signed note) kept earlier ('-' for stdin).", readable=False
        ),
    ],
    url: Annotated[
        str | None,
        typer.Option("--url", help="Ask this server instead of the local log (needs --log-key)."),
    ] = None,
    log_key: Annotated[
        str | None,
        typer.Option("--log-key", help="The pinned log verifier key (default: this log's)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check that today's checkpoint extends one kept earlier (signatures and an RFC 6962
    consistency proof; exit 10 for another log, 11 for a fork)."""
    old_note = read_text_file(old_checkpoint, "the checkpoint file")
    old = parse_checkpoint_note(old_note)
    if url is not None:
        if log_key is None:
            raise UsageError("--url needs --log-key: the key is pinned, not taken from the server")
        vkey = log_key
        new_note, proof = remote_extension_inputs(url, old.size)
    else:
        with runtime(ctx) as rt:
            vkey, new_note, proof = local_extension_inputs(rt, old.size, log_key)
    found = verify_extension(old_note, new_note, proof, vkey)
    data = {
        "ok": True,
        "origin": found.new.origin,
        "old_size": found.old.size,
        "new_size": found.new.size,
        "checkpoint": new_note,
    }
    emit(
        as_json,
        data,
        f"ok: {found.new.origin} at size {found.new.size} extends the kept checkpoint "
        f"at size {found.old.size}",
    )


@app.command("entries")
def log_entries(
    ctx: typer.Context,
    start: Annotated[int, typer.Option("--start", min=0, help="First leaf index.")],
    end: Annotated[int, typer.Option("--end", min=1, help="One past the last leaf index.")],
    as_json: JsonOption = False,
) -> None:
    """Print log entries [start, end) (at most 1000) with their leaf hashes."""
    with unit(ctx, read_only=True) as (_rt, session):
        rows = log_service.entries(session, start, end)
    emit(
        as_json,
        [r.model_dump(mode="json") for r in rows],
        "\n".join(f"{r.index:>8} {r.entry['type']:<22} {r.entry['id']}" for r in rows),
    )


@app.command("receipt")
def log_receipt(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(help="The event id (evt_…).")],
    public: Annotated[
        bool, typer.Option("--public", help="Leave out the event body (pseudonyms, details).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Print the receipt of an event as JSON (for `commons log verify-receipt`)."""
    with unit(ctx) as (_rt, session):
        body = log_service.receipt(session, event_id, include_event=not public)
    # A public receipt has no ``event`` member (the only member that may be None).
    document = body.model_dump(mode="json", exclude_none=True)
    typer.echo(json.dumps(document, indent=2, sort_keys=True))
    del as_json  # a receipt is always JSON


@app.command("verify-receipt")
def log_verify_receipt(
    file: Annotated[
        Path, typer.Argument(help="Receipt JSON file ('-' for stdin).", readable=False)
    ],
    log_key: Annotated[str, typer.Option("--log-key", help="The log's verifier key.")],
    witness_key: Annotated[
        list[str] | None, typer.Option("--witness-key", help="A witness verifier key (repeat).")
    ] = None,
    quorum: Annotated[
        int | None, typer.Option("--quorum", min=1, help="Witnesses required (default: all).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a receipt offline: no database, no network.  A receipt handed out before a
    checkpoint covered its event (a withdrawal or erasure receipt) verifies as pending: the
    log's signed entry and the event."""
    text = read_text_file(file, "the receipt file")
    try:
        receipt = json.loads(text)
    except ValueError as e:
        raise ValidationError("the receipt file is not JSON") from e
    result = verify_any_receipt(receipt, log_key, witness_key or [], quorum)
    if isinstance(result, PendingReceipt):
        pending = {
            "valid": True,
            "included": False,
            "origin": result.origin,
            "event_id": result.entry.id,
            "event_type": result.entry.type,
            "entry_signed": True,
            "event_checked": result.event_checked,
        }
        emit(
            as_json,
            pending,
            f"valid, pending: {result.entry.type} {result.entry.id} is signed by "
            f"{result.origin}; no checkpoint covers it yet (refresh the receipt later)",
        )
        return
    data = {
        "valid": True,
        "included": True,
        "origin": result.checkpoint.origin,
        "size": result.checkpoint.size,
        "index": result.index,
        "event_id": result.entry.id,
        "event_type": result.entry.type,
        "witnesses": list(result.witnesses),
        "entry_signed": result.entry_signed,
        "event_checked": result.event_checked,
    }
    emit(
        as_json,
        data,
        f"valid: {data['event_type']} {data['event_id']} is leaf {result.index} of "
        f"{result.checkpoint.origin} at size {result.checkpoint.size}"
        + (f", cosigned by {', '.join(result.witnesses)}" if result.witnesses else ""),
    )


@app.command("audit")
def log_audit(
    ctx: typer.Context,
    log_key: Annotated[
        list[str] | None,
        typer.Option(
            "--log-key",
            help="Verifier key to trust; repeat for a log continued under a new origin "
            "(default: this log's, every origin).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute the whole tree from stored entries and check every checkpoint."""
    with runtime(ctx) as rt:
        # The recorded identity, so checkpoints signed before a change of public URL verify.
        vkey = log_key or log_identity(rt).vkeys
        # Read-only: the audit never takes the write lock (docs/log.md, "Auditing").
        with transaction(rt.read_sessions) as session:
            size, _ = log_service.log_state(session)
        with progress_bar(as_json) as progress:
            task = progress.add_task("auditing", total=size)
            report = audit_log(rt.engine, vkey, lambda done: progress.update(task, completed=done))
    emit(
        as_json,
        {
            "ok": True,
            "size": report.size,
            "root": base64.b64encode(report.root).decode(),
            "checkpoints": report.checkpoints,
        },
        f"ok: {report.size} leaves, {report.checkpoints} checkpoints match",
    )
