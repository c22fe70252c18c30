"""The platform's domain metrics on ``/metrics`` (issue 21 item 4; docs/operations.md
"Monitoring and alerts"), read from the database at scrape time — cheaply.

Counters of events (issuances, consent decisions, retrievals allowed and denied by reason,
alerts) come from the access monitor's totals (``consent/monitor.py``): a few dozen rows,
the same on every replica, so a query takes ``max without (instance)``.  Gauges — the
log's size, its newest checkpoint's age, how far witnesses, anchors and the monitor are
behind it, queue depths — are each one bounded read (queues counted up to
:data:`QUEUE_CAP`).  A snapshot is kept ``ttl`` seconds, so scrapes in quick succession (two
Prometheus servers, a person with curl) cost one read; a database that does not answer
gives ``commons_metrics_database_up 0`` and no domain figures rather than a failed scrape.

No label carries personal data or an unbounded value: event types, operations and reasons
are fixed sets in the code; witnesses and anchor backends are the configured ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from credit_commons.consent import monitor, webhooks
from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError
from credit_commons.federation import publisher_refusals
from credit_commons.gateway.cached_read import CachedRead
from credit_commons.ledger.health import LogHealth, log_health
from credit_commons.ledger.steps import parse_witnesses
from credit_commons.reputation import capability
from credit_commons.runtime import Runtime

__all__ = ["QUEUE_CAP", "DomainMetrics", "install_domain_metrics", "rate_limit_counter"]

log = logging.getLogger("credit_commons.gateway")
QUEUE_CAP = 100_000


@dataclass
class _Snapshot:
    up: bool = False
    totals: list[tuple[str, str, str, int]] = field(default_factory=list)
    health: LogHealth | None = None
    queues: dict[str, int] = field(default_factory=dict)
    monitor_lag: int = 0
    refused_streams: list[str] = field(default_factory=list)
    taken_at: float = 0.0  # time.time() when read


class DomainMetrics(Collector):
    """A Prometheus collector of the domain figures, read at most every ``ttl`` seconds."""

    def __init__(self, runtime: Runtime, ttl: float = 10.0) -> None:
        self.rt = runtime
        settings = runtime.settings
        try:
            self.witnesses = [w.name for w in parse_witnesses(settings.log_witnesses)]
        except CommonsError:  # the worker refuses them; here they are only labels
            self.witnesses = []
        self.backends = list(settings.anchor_backends)
        self._cache = CachedRead(self._read, ttl)

    def _read(self) -> _Snapshot:
        snap = _Snapshot(taken_at=time.time())
        try:
            with transaction(self.rt.read_sessions) as session:
                snap.totals = monitor.event_totals(session)
                snap.health = log_health(
                    session, witnesses=self.witnesses, backends=self.backends, cap=QUEUE_CAP
                )
                snap.monitor_lag = monitor.monitor_lag(session)
                snap.queues = {
                    "log_outbox": snap.health.outbox,
                    "webhooks": webhooks.pending_deliveries(session, QUEUE_CAP),
                    "capabilities": capability.pending_count(session, QUEUE_CAP),
                }
                # Rows left by a publisher before federation was switched off say nothing
                # about now: without COMMONS_NATS_URL nothing is refused.
                if self.rt.settings.nats_url is not None:
                    snap.refused_streams = [r.stream for r in publisher_refusals(session)]
            snap.up = True
        except (SQLAlchemyError, CommonsError) as e:
            log.warning("metrics not read", extra={"fields": {"error": type(e).__name__}})
        return snap

    def snapshot(self) -> _Snapshot:
        """The figures, read again when the last read is older than ``ttl``."""
        return self._cache.get()

    def collect(self) -> Iterator[Metric]:  # signature: prometheus_client's Collector
        """Every domain metric (docs/operations.md lists them)."""
        snap = self.snapshot()
        up = GaugeMetricFamily(
            "commons_metrics_database_up", "1 when the last read of the domain figures worked."
        )
        up.add_metric([], 1.0 if snap.up else 0.0)
        yield up
        if not snap.up or snap.health is None:
            return
        yield from _counters(snap.totals)
        yield from _gauges(snap)


def _counters(totals: list[tuple[str, str, str, int]]) -> Iterator[Metric]:
    events = CounterMetricFamily(
        "commons_events",
        "Events recorded, by type (as the access monitor read them).",
        labels=["type"],
    )
    access = CounterMetricFamily(
        "commons_access",
        "Attempts on borrowers' data, by outcome, operation and (denials) reason.",
        labels=["outcome", "operation", "reason"],
    )
    alerts = CounterMetricFamily(
        "commons_alerts", "Anomalous-access alerts raised, by kind.", labels=["kind"]
    )
    by_type: dict[str, int] = {}
    for type_, operation, reason, count in totals:
        by_type[type_] = by_type.get(type_, 0) + count
        if type_ in ("access.allowed", "access.denied"):
            outcome = type_.removeprefix("access.")
            access.add_metric([outcome, operation, reason], float(count))
        elif type_ == "alert.raised":
            alerts.add_metric([operation], float(count))
    for type_, count in sorted(by_type.items()):
        events.add_metric([type_], float(count))
    yield events
    yield access
    yield alerts


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, text)
    gauge.add_metric([], value)
    return gauge


def _gauges(snap: _Snapshot) -> Iterator[Metric]:
    health = snap.health
    assert health is not None
    yield _gauge("commons_log_size", "Leaves sequenced into the log.", float(health.size))
    yield _gauge(
        "commons_log_checkpoint_size",
        "Tree size of the newest signed checkpoint.",
        float(health.checkpoint_size),
    )
    age = snap.taken_at - health.checkpoint_at.timestamp() if health.checkpoint_at else 0.0
    yield _gauge(
        "commons_log_checkpoint_age_seconds",
        "Seconds since the newest checkpoint was signed (0 before the first).",
        max(0.0, age),
    )
    witness = GaugeMetricFamily(
        "commons_log_witness_lag",
        "Leaves the newest checkpoint is ahead of what each witness cosigned.",
        labels=["witness"],
    )
    for name, size in sorted(health.witnesses.items()):
        witness.add_metric([name], float(max(0, health.checkpoint_size - size)))
    yield witness
    anchor = GaugeMetricFamily(
        "commons_log_anchor_lag",
        "Leaves the newest checkpoint is ahead of what each anchor backend published.",
        labels=["backend"],
    )
    for backend, size in sorted(health.anchors.items()):
        anchor.add_metric([backend], float(max(0, health.checkpoint_size - size)))
    yield anchor
    queues = GaugeMetricFamily(
        "commons_queue_depth",
        f"Rows waiting in each queue (counted up to {QUEUE_CAP}).",
        labels=["queue"],
    )
    for queue, depth in sorted(snap.queues.items()):
        queues.add_metric([queue], float(depth))
    yield queues
    yield _gauge(
        "commons_monitor_lag",
        "Sequenced leaves the access monitor has not read yet.",
        float(snap.monitor_lag),
    )
    refused = GaugeMetricFamily(
        "commons_federation_refused",
        "1 for each stream the NATS publisher found holding another platform's messages when "
        "it last connected (it publishes nothing meanwhile; docs/federation.md).",
        labels=["stream"],
    )
    for stream in snap.refused_streams:
        refused.add_metric([stream], 1.0)
    yield refused


def install_domain_metrics(registry: CollectorRegistry, runtime: Runtime) -> DomainMetrics:
    """Register the domain metrics in the app's ``registry``."""
    collector = DomainMetrics(runtime)
    registry.register(collector)
    return collector


def rate_limit_counter(registry: CollectorRegistry) -> Counter:
    """The counter of requests refused 429 by rate limits, by route group and what was
    counted (``ip``, ``credential``, ``client``)."""
    return Counter(
        "commons_rate_limited",
        "Requests refused by a rate limit, by route group and counted key.",
        ["group", "key"],
        registry=registry,
    )
