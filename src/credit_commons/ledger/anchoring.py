"""Anchoring checkpoints: the outbox, retries with backoff, and the reconciler (seed 002 §9).

For every configured backend, at most one anchor job is created per
``COMMONS_ANCHOR_INTERVAL`` seconds, for the newest checkpoint.  A job is claimed by moving
its ``next_attempt_at`` forward in a short transaction (a lease, so two workers never
publish the same job at once), published *outside* any transaction (the network call), and
then marked PUBLISHED with its receipt and a ``checkpoint.anchored`` event — or, on a
retryable failure, rescheduled with exponential backoff and full jitter, and DEAD after
``COMMONS_ANCHOR_MAX_ATTEMPTS``.  The reconciler reads each PUBLISHED anchor back from its
backend and records VERIFIED or MISMATCH.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import func, select, update

from credit_commons.core.clock import utc
from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import ConfigurationError
from credit_commons.core.settings import Settings
from credit_commons.events import Digest, EventDetails, Token, record_event
from credit_commons.ledger import service as log_service
from credit_commons.ledger.anchors import (
    AnchorBackend,
    AnchorError,
    AnchorNotFound,
    AnchorReceipt,
    AnchorRecord,
    EvmAnchorBackend,
    FileAnchorBackend,
    backoff_delay,
)
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.models import AnchorJobRow
from credit_commons.runtime import Runtime

__all__ = [
    "AnchorJobView",
    "AnchorStatus",
    "CheckpointAnchored",
    "anchor_status",
    "build_backends",
    "enqueue_anchors",
    "publish_due",
    "reconcile",
]

log = logging.getLogger("credit_commons.ledger.anchoring")
_LEASE = timedelta(minutes=2)


class AnchorStatus(StrEnum):
    """Lifecycle of an anchor job."""

    PENDING = "PENDING"
    PUBLISHED = "PUBLISHED"
    VERIFIED = "VERIFIED"
    MISMATCH = "MISMATCH"
    DEAD = "DEAD"


class CheckpointAnchored(EventDetails, event_type="checkpoint.anchored"):
    """A checkpoint root was published to an anchor backend."""

    backend: Token
    size: int
    root: Digest


def build_backends(settings: Settings) -> dict[str, AnchorBackend]:
    """The anchor backends named by ``COMMONS_ANCHOR_BACKENDS``.

    Raises :class:`ConfigurationError` for an unknown name or an incomplete ``evm`` setup.
    """
    backends: dict[str, AnchorBackend] = {}
    for name in settings.anchor_backends:
        if name == "file":
            backends[name] = FileAnchorBackend(settings.resolved_anchor_file)
        elif name == "evm":
            url, contract = settings.anchor_evm_rpc_url, settings.anchor_evm_contract
            key = settings.anchor_evm_private_key
            if not (url and contract and key):
                raise ConfigurationError(
                    "the evm anchor backend needs an RPC URL, a contract and a key",
                    hint="set COMMONS_ANCHOR_EVM_RPC_URL, COMMONS_ANCHOR_EVM_CONTRACT and "
                    "COMMONS_ANCHOR_EVM_PRIVATE_KEY (deploy with `commons anchor deploy`)",
                )
            backends[name] = EvmAnchorBackend.from_rpc_url(url, key.get_secret_value(), contract)
        else:
            raise ConfigurationError(
                f"unknown anchor backend {name!r}", hint="COMMONS_ANCHOR_BACKENDS takes file, evm"
            )
    return backends


def enqueue_anchors(
    rt: Runtime, backends: Mapping[str, AnchorBackend], *, force: bool = False
) -> int:
    """Create a job per backend for the newest checkpoint when the interval has passed."""
    now = rt.clock.now()
    created = 0
    # Established (if need be) in its own transaction, before this one takes its snapshot.
    origin = log_identity(rt).origin
    with transaction(rt.sessions) as session:
        checkpoint = log_service.latest_checkpoint(session)
        if checkpoint is None or checkpoint.size == 0:
            return 0
        for name in backends:
            last = session.execute(
                select(func.max(AnchorJobRow.size), func.max(AnchorJobRow.created_at)).where(
                    AnchorJobRow.backend == name
                )
            ).one()
            if last[0] is not None and last[0] >= checkpoint.size:
                continue
            interval = timedelta(seconds=rt.settings.anchor_interval)
            if not force and last[1] is not None and now - utc(last[1]) < interval:
                continue
            session.add(
                AnchorJobRow(
                    backend=name,
                    origin=origin,
                    size=checkpoint.size,
                    root=checkpoint.root,
                    status=AnchorStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            created += 1
    return created


def _claim(rt: Runtime, job: AnchorJobRow) -> bool:
    now = rt.clock.now()
    with transaction(rt.sessions) as session:
        result = session.execute(
            update(AnchorJobRow)
            .where(
                AnchorJobRow.id == job.id,
                AnchorJobRow.status == AnchorStatus.PENDING,
                AnchorJobRow.next_attempt_at == job.next_attempt_at,
            )
            .values(
                next_attempt_at=now + _LEASE, attempts=AnchorJobRow.attempts + 1, updated_at=now
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def publish_due(
    rt: Runtime,
    backends: Mapping[str, AnchorBackend],
    *,
    jitter: Callable[[], float] = random.random,
) -> dict[str, int]:
    """Publish every due PENDING job; returns counts by outcome."""
    now = rt.clock.now()
    counts = {"published": 0, "retry": 0, "dead": 0}
    with transaction(rt.read_sessions) as session:
        due = session.scalars(
            select(AnchorJobRow)
            .where(AnchorJobRow.status == AnchorStatus.PENDING, AnchorJobRow.next_attempt_at <= now)
            .order_by(AnchorJobRow.id)
            .limit(50)
        ).all()
    for job in due:
        backend = backends.get(job.backend)
        if backend is None or not _claim(rt, job):
            continue
        attempts = job.attempts + 1
        try:
            receipt = backend.publish(AnchorRecord(job.origin, job.size, job.root))
        except AnchorError as e:
            dead = not e.retryable or attempts >= rt.settings.anchor_max_attempts
            delay = backoff_delay(attempts, base=1.0, cap=3600.0, jitter=jitter)
            with transaction(rt.sessions) as session:
                session.execute(
                    update(AnchorJobRow)
                    .where(AnchorJobRow.id == job.id)
                    .values(
                        status=AnchorStatus.DEAD if dead else AnchorStatus.PENDING,
                        next_attempt_at=rt.clock.now() + timedelta(seconds=delay),
                        last_error=e.code,
                        updated_at=rt.clock.now(),
                    )
                )
            counts["dead" if dead else "retry"] += 1
            log.warning(
                "anchor attempt failed",
                extra={
                    "fields": {
                        "backend": job.backend,
                        "size": job.size,
                        "code": e.code,
                        "dead": dead,
                    }
                },
            )
            continue
        with transaction(rt.sessions) as session:
            session.execute(
                update(AnchorJobRow)
                .where(AnchorJobRow.id == job.id)
                .values(
                    status=AnchorStatus.PUBLISHED,
                    receipt=json.dumps(receipt.to_json(), sort_keys=True),
                    last_error=None,
                    updated_at=rt.clock.now(),
                )
            )
            record_event(
                session,
                CheckpointAnchored(backend=job.backend, size=job.size, root=bytes(job.root).hex()),
                actor=rt.pseudonymizer.pseudonym("operator", "log-worker"),
                at=rt.clock.now(),
                object=rt.objects.digest("checkpoint", f"{job.origin}/{job.size}"),
            )
        counts["published"] += 1
    return counts


def reconcile(rt: Runtime, backends: Mapping[str, AnchorBackend]) -> dict[str, int]:
    """Read back every PUBLISHED anchor: VERIFIED if it matches, MISMATCH if it does not."""
    counts = {"verified": 0, "mismatch": 0, "unconfirmed": 0}
    with transaction(rt.read_sessions) as session:
        published = session.scalars(
            select(AnchorJobRow).where(AnchorJobRow.status == AnchorStatus.PUBLISHED).limit(100)
        ).all()
    for job in published:
        backend = backends.get(job.backend)
        if backend is None or job.receipt is None:
            continue
        expected = AnchorRecord(job.origin, job.size, job.root)
        try:
            found = backend.read_back(AnchorReceipt.from_json(json.loads(job.receipt)))
        except AnchorNotFound:
            counts["unconfirmed"] += 1  # e.g. not yet deep enough, or reorganised away
            continue
        except AnchorError as e:
            if e.retryable:
                counts["unconfirmed"] += 1
                continue
            found = None
        status = AnchorStatus.VERIFIED if found == expected else AnchorStatus.MISMATCH
        with transaction(rt.sessions) as session:
            session.execute(
                update(AnchorJobRow)
                .where(AnchorJobRow.id == job.id, AnchorJobRow.status == AnchorStatus.PUBLISHED)
                .values(status=status, updated_at=rt.clock.now())
            )
        if status is AnchorStatus.MISMATCH:
            log.error(
                "anchor mismatch", extra={"fields": {"backend": job.backend, "size": job.size}}
            )
        counts["verified" if status is AnchorStatus.VERIFIED else "mismatch"] += 1
    return counts


@dataclass(frozen=True, slots=True)
class AnchorJobView:
    """One anchor job as ``commons anchor status`` shows it (``root`` in hex; ``receipt``:
    the backend's own receipt document, once published)."""

    backend: str
    size: int
    root: str
    status: str
    attempts: int
    last_error: str | None
    receipt: JsonObject | None
    updated_at: str


def anchor_status(rt: Runtime) -> list[AnchorJobView]:
    """Every anchor job, newest first (for ``commons anchor status``)."""
    with transaction(rt.read_sessions) as session:
        jobs = session.scalars(
            select(AnchorJobRow).order_by(AnchorJobRow.id.desc()).limit(200)
        ).all()
        return [
            AnchorJobView(
                backend=j.backend,
                size=j.size,
                root=bytes(j.root).hex(),
                status=j.status,
                attempts=j.attempts,
                last_error=j.last_error,
                receipt=json.loads(j.receipt) if j.receipt else None,
                updated_at=utc(j.updated_at).isoformat(),
            )
            for j in jobs
        ]
