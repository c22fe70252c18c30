"""The log worker's optional steps: witness cosignatures and anchoring.

Each step takes the runtime and the newest checkpoint size and returns counts for the
worker's report.  They are built from the settings by :func:`default_steps`.
"""

from __future__ import annotations

import time
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
    "anchor_step",
    "consent_step",
    "default_probes",
    "default_steps",
    "parse_witnesses",
    "retention_step",
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
                return list(
                    consistency_proof(old, new, TileHashSource(session, rt.extras_tile_cache()))
                )

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


def retention_step() -> Step:
    """Run the privacy retention policy every ``COMMONS_RETENTION_INTERVAL`` seconds."""
    last = [float("-inf")]

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        from credit_commons.privacy.retention import run_retention  # noqa: PLC0415 - domain edge

        now = time.monotonic()
        if now - last[0] < rt.settings.retention_interval:
            return {}
        last[0] = now
        with transaction(rt.sessions) as session:
            counts = run_retention(session, rt)
        return {f"retention_{k}": v for k, v in counts.items()}

    return step


def consent_step(interval: float = 5.0) -> Step:
    """Every ``interval`` seconds: expire consents past their expiry and deliver the
    webhooks that are due (passes in between cost nothing: the sequencer's batches stay
    fast under a backlog)."""
    last = [float("-inf")]

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        from credit_commons.consent import service, webhooks  # noqa: PLC0415 - domain edge

        now = time.monotonic()
        if now - last[0] < interval:
            return {}
        last[0] = now
        with transaction(rt.sessions) as session:
            expired = service.expire_due(session, rt).expired
        delivered = webhooks.deliver_due(rt)
        report: dict[str, object] = {f"webhooks_{k}": v for k, v in delivered.items() if v}
        if expired:
            report["consents_expired"] = expired
        return report

    return step


def default_probes(rt: Runtime) -> list[Step]:
    """What the worker asks once, at start-up, before it sequences or signs: each
    configured witness's own size (see :func:`witness_step`)."""
    if not rt.settings.log_witnesses:
        return []
    return [witness_step(parse_witnesses(rt.settings.log_witnesses), probe=True)]


def default_steps(rt: Runtime) -> list[Step]:
    """The steps the settings ask for (witnesses, anchors), retention, consent expiry and
    webhooks, and closing due erasure epochs; raises ``ConfigurationError``."""
    from credit_commons.privacy.epochs import epoch_step  # noqa: PLC0415 - domain edge

    steps: list[Step] = [retention_step(), consent_step(), epoch_step()]
    if rt.settings.log_witnesses:
        steps.append(witness_step(parse_witnesses(rt.settings.log_witnesses)))
    if rt.settings.anchor_backends:
        steps.append(anchor_step(anchoring.build_backends(rt.settings)))
    return steps
