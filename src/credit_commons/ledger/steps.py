"""The log worker's optional steps of the log itself: witness cosignatures and anchoring.

Each step takes the runtime and the newest checkpoint size and returns counts for the
worker's report.  They are built from the settings by :func:`log_steps`; the platform's
whole list of periodic steps is composed in :mod:`credit_commons.jobs`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx
from sqlalchemy import select

from credit_commons.core.db import transaction
from credit_commons.core.errors import ConfigurationError, ValidationError
from credit_commons.ledger import anchoring
from credit_commons.ledger import service as log_service
from credit_commons.ledger.anchors import AnchorBackend
from credit_commons.ledger.models import CosignatureRow, WitnessProgressRow
from credit_commons.ledger.rfc6962 import Hash, consistency_proof
from credit_commons.ledger.tiles import TileHashSource
from credit_commons.ledger.witness_client import WitnessEndpoint, collect_cosignatures
from credit_commons.runtime import Runtime

__all__ = [
    "Step",
    "anchor_step",
    "default_probes",
    "log_steps",
    "parse_witnesses",
    "witness_step",
]

Step = Callable[[Runtime, int], dict[str, object]]


def parse_witnesses(entries: list[str]) -> list[WitnessEndpoint]:
    """Parse ``COMMONS_LOG_WITNESSES`` entries ``VKEY@URL``.

    Raises :class:`ConfigurationError` naming the bad entry's position.
    """
    endpoints = []
    for position, entry in enumerate(entries):
        vkey, sep, url = entry.rpartition("@")
        try:
            if not sep:
                raise ValidationError("missing '@'")
            endpoints.append(WitnessEndpoint(url=url, vkey=vkey))
        except Exception as e:
            raise ConfigurationError(
                f"COMMONS_LOG_WITNESSES entry {position} is not 'VKEY@URL'",
                hint="the vkey is the witness's cosignature key, printed when it starts",
            ) from e
    return endpoints


def witness_step(
    endpoints: list[WitnessEndpoint],
    transport: httpx.BaseTransport | None = None,
    *,
    probe: bool = False,
) -> Step:
    """Ask each witness to cosign the newest checkpoint it has not cosigned yet.

    With ``probe``, every witness is asked, claiming it is at the newest checkpoint's size:
    one that is further answers with its own size (tlog-witness §add-checkpoint, 409),
    recorded as its progress — how the worker learns at start-up, before it signs anything,
    that a restored database is behind what the witnesses cosigned (ledger/continuity.py).
    """

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        with transaction(rt.read_sessions) as session:
            row = log_service.latest_checkpoint(session)
            if row is None or row.size == 0:
                return {}
            have = set(
                session.scalars(
                    select(CosignatureRow.witness).where(CosignatureRow.size == row.size)
                )
            )
            progress = {p.witness: p.size for p in session.scalars(select(WitnessProgressRow))}
            note, size = row.note, row.size
        todo = [e for e in endpoints if probe or e.verifier.name not in have]
        if probe:
            progress = {e.verifier.name: size for e in endpoints}
        if not todo:
            return {}

        def proof_for(old: int, new: int) -> list[Hash]:
            with transaction(rt.read_sessions) as session:
                return list(consistency_proof(old, new, TileHashSource(session, rt.tile_cache)))

        result = collect_cosignatures(
            note, witnesses=todo, last_known_size=progress, proof_for=proof_for, transport=transport
        )
        now = rt.clock.now()
        with transaction(rt.sessions) as session:
            for name, cosignature in result.cosignatures.items():
                line = cosignature.line.rstrip("\n")  # stored as a bare signature line
                session.merge(CosignatureRow(size=size, witness=name, line=line, created_at=now))
                session.merge(WitnessProgressRow(witness=name, size=cosignature.size))
            for name, failure in result.failures.items():
                if failure.size is not None:
                    session.merge(WitnessProgressRow(witness=name, size=failure.size))
        return {"cosigned": len(result.cosignatures), "witness_failures": len(result.failures)}

    return step


def anchor_step(backends: Mapping[str, AnchorBackend]) -> Step:
    """Enqueue, publish and reconcile anchors of the newest checkpoint."""

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        report: dict[str, object] = {"anchors_enqueued": anchoring.enqueue_anchors(rt, backends)}
        report.update({f"anchors_{k}": v for k, v in anchoring.publish_due(rt, backends).items()})
        report.update({f"anchors_{k}": v for k, v in anchoring.reconcile(rt, backends).items()})
        return report

    return step


def default_probes(rt: Runtime) -> list[Step]:
    """What the worker asks once, at start-up, before it sequences or signs: each
    configured witness's own size (see :func:`witness_step`)."""
    if not rt.settings.log_witnesses:
        return []
    return [witness_step(parse_witnesses(rt.settings.log_witnesses), probe=True)]


def log_steps(rt: Runtime) -> list[Step]:
    """The log's own steps the settings ask for (witnesses, anchors); raises
    ``ConfigurationError``.  The platform's other periodic work (consent expiry, webhooks,
    retention, erasure epochs) is composed with these in :mod:`credit_commons.jobs`."""
    steps: list[Step] = []
    if rt.settings.log_witnesses:
        steps.append(witness_step(parse_witnesses(rt.settings.log_witnesses)))
    if rt.settings.anchor_backends:
        steps.append(anchor_step(anchoring.build_backends(rt.settings)))
    return steps
