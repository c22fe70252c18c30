"""``commons worker``: the log worker (sequencing, checkpoints, cosignatures, anchoring)."""

from __future__ import annotations

from typing import Annotated

import typer

from credit_commons import __version__
from credit_commons.cli.log import continuity, refuse_if_held, warn_if_diverged
from credit_commons.cli.support import JsonOption, emit, holder, runtime, settings
from credit_commons.core.db import transaction
from credit_commons.core.db_role import check_db_role
from credit_commons.core.heap import freeze_startup_heap
from credit_commons.core.logging import configure_logging
from credit_commons.core.tracing import start_tracing
from credit_commons.jobs import default_steps
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.worker import LogWorker
from credit_commons.privacy.pepper import check_peppers

__all__ = ["app", "worker_command"]

app = holder()


@app.command("worker")
def worker_command(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Run one pass and exit.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Run the log worker: sequence events, checkpoint, cosign, anchor."""
    configure_logging(settings(ctx).log_level)
    start_tracing(settings(ctx).tracing, version=__version__)  # when OTEL_* configure it
    with runtime(ctx) as rt:
        if rt.settings.is_production or rt.settings.strict_db_role:
            check_db_role(rt.engine)  # as the server's start-up does (docs/operations.md)
        with transaction(rt.sessions) as session:
            check_peppers(session, rt)
        log_identity(rt)  # recorded on the log's first start; a disagreeing origin refused
        worker = LogWorker(rt, steps=default_steps(rt))
        if once:
            # Refused before anything runs when the database does not continue the
            # published log (ledger/continuity.py): exit 7 naming the gap.
            continuity(rt).check()
            refuse_if_held(rt)
        else:
            warn_if_diverged(rt)
            freeze_startup_heap()
        if once:
            report = worker.run_once(force_checkpoint=True)
            while report.backlog:
                report = worker.run_once(force_checkpoint=True)
            if report.diverged is not None:
                raise report.diverged.error()
            emit(
                as_json,
                {
                    "sequenced": report.sequenced,
                    "size": report.size,
                    "checkpoint": report.checkpoint,
                    **report.extra,
                },
                f"sequenced {report.sequenced}, size {report.size}, checkpoint {report.checkpoint}",
            )
            return
        try:
            worker.run_forever()
        except KeyboardInterrupt:
            worker.stop()
