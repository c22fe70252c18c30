"""The full node's ``/metrics`` (issue 20; docs/federation.md, "Metrics"), in the style of
the platform's domain metrics (``gateway/monitoring.py``): read from the node's database at
scrape time — a few dozen counter rows and two bounded reads — and kept ``ttl`` seconds, so
scrapes in quick succession cost one read; a database that does not answer gives
``commons_node_database_up 0`` and no figures rather than a failed scrape.

No label carries an unbounded value: streams are the federation's fixed streams, reasons
the node's fixed drop reasons.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from credit_commons.core.clock import utc
from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError
from credit_commons.federation import STREAMS
from credit_commons.gateway.cached_read import CachedRead
from credit_commons.node import DROP_REASONS, Mirror, MissingInputs
from credit_commons.node import store as node_store

__all__ = ["NodeMetrics"]

log = logging.getLogger("credit_commons.node")


@dataclass
class _Snapshot:
    up: bool = False
    counters: dict[str, int] = field(default_factory=dict)
    tree_size: int = 0
    checkpoint_size: int = 0
    checkpoint_age: float = 0.0
    forks: int = 0


class NodeMetrics(Collector):
    """A Prometheus collector of the node's figures, read at most every ``ttl`` seconds.
    ``lag`` gives, per stream, the messages JetStream still held for the node's consumer
    at its last fetch (the follower's ``pending``); a stream not fetched yet is absent.
    ``missing`` gives the scoring inputs the scorer's last pass found missing (``None``
    when it could not read them: the gauges are then absent)."""

    def __init__(
        self,
        mirror: Mirror,
        *,
        lag: Callable[[], Mapping[str, int]] | None = None,
        missing: Callable[[], MissingInputs | None] | None = None,
        ttl: float = 10.0,
    ) -> None:
        self.mirror, self.lag, self.missing = mirror, lag, missing
        self._cache = CachedRead(self._read, ttl)

    def _read(self) -> _Snapshot:
        snap = _Snapshot()
        try:
            with transaction(self.mirror.sessions) as session:
                snap.counters = node_store.counters(session)
                snap.tree_size = node_store.tree_size(session)
                latest = node_store.latest_checkpoint(session)
                snap.forks = len(node_store.forks(session))
            if latest is not None:
                snap.checkpoint_size = int(latest.size)
                age = self.mirror.clock.now() - utc(latest.received_at)
                snap.checkpoint_age = max(0.0, age.total_seconds())
            snap.up = True
        except (SQLAlchemyError, CommonsError) as e:
            log.warning("node metrics not read", extra={"fields": {"error": type(e).__name__}})
        return snap

    def snapshot(self) -> _Snapshot:
        """The figures, read again when the last read is older than ``ttl``."""
        return self._cache.get()

    def collect(self) -> Iterator[Metric]:  # signature: prometheus_client's Collector
        """Every node metric (docs/federation.md lists them)."""
        snap = self.snapshot()
        up = GaugeMetricFamily(
            "commons_node_database_up", "1 when the last read of the node's figures worked."
        )
        up.add_metric([], 1.0 if snap.up else 0.0)
        yield up
        if snap.up:
            yield from _counters(snap)
            yield from _gauges(snap)
        if self.lag is not None:
            lag = GaugeMetricFamily(
                "commons_node_lag_messages",
                "Messages JetStream held for the node's consumer at its last fetch, by stream.",
                labels=["stream"],
            )
            for stream, pending in sorted(self.lag().items()):
                lag.add_metric([stream], float(pending))
            yield lag
        # Absent while unknown (the scorer's last pass could not read them), so a scrape
        # never shows the pass before's counts as current.
        missing = None if self.missing is None else self.missing()
        if missing is not None:
            yield from _missing(missing)


def _missing(missing: MissingInputs) -> Iterator[Metric]:
    # What the newest checkpoint's scoring waits for, as the scorer's last pass found it.
    counts = GaugeMetricFamily(
        "commons_node_scoring_inputs_missing",
        "Reputation events and membership messages below the newest checkpoint the mirror "
        "lacks (scoring refuses until they are mirrored), by stream.",
        labels=["stream"],
    )
    for stream, number in sorted(missing.counts.items()):
        counts.add_metric([stream], float(number))
    yield counts
    first = [leaves[0] for leaves in missing.first.values() if leaves]
    if first:
        yield _gauge(
            "commons_node_scoring_first_missing_leaf",
            "The first leaf whose message scoring waits for (absent when none).",
            min(first),
        )


def _by_stream(counters: Mapping[str, int], prefix: str, name: str, text: str) -> Metric:
    family = CounterMetricFamily(name, text, labels=["stream"])
    for spec in STREAMS:
        family.add_metric([spec.name], float(counters.get(f"{prefix}.{spec.name}", 0)))
    return family


def _counters(snap: _Snapshot) -> Iterator[Metric]:
    counters = snap.counters
    yield _by_stream(
        counters,
        "accepted",
        "commons_node_messages_stored",
        "Messages verified and stored, by stream.",
    )
    yield _by_stream(
        counters,
        "throttled",
        "commons_node_messages_throttled",
        "Messages held back over a quota (delivered again later), by stream.",
    )
    dropped = CounterMetricFamily(
        "commons_node_messages_dropped",
        "Messages dropped (acknowledged, never stored), by reason.",
        labels=["reason"],
    )
    for reason in DROP_REASONS:
        dropped.add_metric([reason], float(counters.get(f"dropped.{reason}", 0)))
    yield dropped
    gaps = CounterMetricFamily(
        "commons_node_gaps", "Batches that stopped at a missing stream sequence."
    )
    gaps.add_metric([], float(counters.get("gaps", 0)))
    yield gaps


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, text)
    gauge.add_metric([], value)
    return gauge


def _gauges(snap: _Snapshot) -> Iterator[Metric]:
    yield _gauge("commons_node_tree_size", "Leaves in the mirrored log tree.", snap.tree_size)
    yield _gauge(
        "commons_node_checkpoint_size",
        "Tree size of the newest mirrored checkpoint (0 before the first).",
        snap.checkpoint_size,
    )
    yield _gauge(
        "commons_node_checkpoint_age_seconds",
        "Seconds since the newest mirrored checkpoint was stored (0 before the first).",
        snap.checkpoint_age,
    )
    yield _gauge("commons_node_forks", "Checkpoints refused as forks and kept.", snap.forks)
