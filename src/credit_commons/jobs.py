"""The platform's periodic work, composed for the one worker that runs it.

The log worker (:class:`credit_commons.ledger.worker.LogWorker`) sequences events and signs
checkpoints; after each pass it runs a list of steps.  The log's own steps (witness
cosignatures, anchoring) live in :mod:`credit_commons.ledger.steps`; the steps that belong
to other domains — consent expiry and webhook delivery, privacy retention, closing due
erasure epochs, refreshing other platforms' pinned trust bundles — are composed here, at
the edge, so that the log (a lower layer) never imports the domains above it.  Whatever
starts a worker (``commons serve``, ``commons worker``, ``commons log checkpoint
--publish``) passes ``steps=default_steps(rt)``.
"""

from __future__ import annotations

import time

from credit_commons.consent import service as consent_service
from credit_commons.consent import webhooks
from credit_commons.core.db import transaction
from credit_commons.identity import Principal
from credit_commons.ledger.steps import Step, log_steps
from credit_commons.privacy.epochs import epoch_step
from credit_commons.privacy.retention import run_retention
from credit_commons.reputation import RuleSetNotFound, scores_service
from credit_commons.runtime import Runtime
from credit_commons.verifier import trust_pins
from credit_commons.web import prune_sessions
from credit_commons.web.borrower_code import prune_signin_codes

__all__ = [
    "consent_step",
    "default_steps",
    "retention_step",
    "scores_step",
    "trust_pins_step",
]


def retention_step() -> Step:
    """Run the privacy retention policy every ``COMMONS_RETENTION_INTERVAL`` seconds, and
    delete the console's sessions that have expired and its sign-in codes older than an
    hour (docs/console.md)."""
    last = [float("-inf")]

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        now = time.monotonic()
        if now - last[0] < rt.settings.retention_interval:
            return {}
        last[0] = now
        with transaction(rt.sessions) as session:
            counts = run_retention(session, rt)
            counts["web_sessions"] = prune_sessions(session, rt.clock.now())
            counts["web_signin_codes"] = prune_signin_codes(session, rt.clock.now())
        return {f"retention_{k}": v for k, v in counts.items()}

    return step


def consent_step(interval: float = 5.0) -> Step:
    """Every ``interval`` seconds: expire consents past their expiry and deliver the
    webhooks that are due (passes in between cost nothing: the sequencer's batches stay
    fast under a backlog)."""
    last = [float("-inf")]

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        now = time.monotonic()
        if now - last[0] < interval:
            return {}
        last[0] = now
        with transaction(rt.sessions) as session:
            expired = consent_service.expire_due(session, rt).expired
        delivered = webhooks.deliver_due(rt)
        report: dict[str, object] = {f"webhooks_{k}": v for k, v in delivered.items() if v}
        if expired:
            report["consents_expired"] = expired
        return report

    return step


def trust_pins_step(interval: float = 3600.0) -> Step:
    """Every ``interval`` seconds, fetch every pinned trust bundle of another platform again
    (docs/verifier.md): hourly keeps a kept bundle fresh well within its day of validity."""
    last = [float("-inf")]
    worker = Principal("worker", "admin")

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        now = time.monotonic()
        if now - last[0] < interval:
            return {}
        last[0] = now
        outcomes = trust_pins.refresh_pins(rt, worker)  # its own units of work
        report: dict[str, object] = {}
        accepted = sum(o.accepted for o in outcomes)
        if accepted:
            report["trust_pins_refreshed"] = accepted
        if len(outcomes) > accepted:
            report["trust_pins_refused"] = len(outcomes) - accepted
        return report

    return step


def scores_step() -> Step:
    """Score each new signed checkpoint (docs/reputation.md, "Score bundles"): in full on a
    new day or changed memberships, else incrementally from the state this worker kept.
    Nothing happens before a rule set is in effect.

    The DIDs to leave out (tombstoned or restricted) are privacy's to say; privacy keeps no
    DID-level restriction yet (DIDs are pseudonymous keys the platform does not link to an
    identity), so the set passed is empty until it does."""
    state = scores_service.ScoringState()

    def step(rt: Runtime, _size: int) -> dict[str, object]:
        try:
            done = scores_service.score_checkpoint(rt, state, frozenset())
        except RuleSetNotFound:
            return {}
        if done is None:
            return {}
        return {
            "scores_checkpoint": done.size,
            "scores_records": done.records,
            "scores_full": done.full,
            "scores_queued": done.queued,
        }

    return step


def default_steps(rt: Runtime) -> list[Step]:
    """Retention, consent expiry and webhooks, closing due erasure epochs, refreshing
    pinned trust bundles, scoring new checkpoints, then the log's steps the settings ask
    for (witnesses, anchors); raises ``ConfigurationError``."""
    return [
        retention_step(),
        consent_step(),
        epoch_step(),
        trust_pins_step(),
        scores_step(),
        *log_steps(rt),
    ]
