"""What OpenTelemetry tracing costs a request (issue 21 item 4; docs/operations.md "Tracing").

One database (SQLite by default, ``--backend postgresql`` for a fresh schema on the test
server) and one real ``commons serve`` (one process, ``--no-worker``) at a time, started
anew for each phase: tracing **off** (no ``OTEL_*`` set: the baseline, same run) and tracing
**on** (``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at an OTLP/HTTP receiver in this process,
tests/otlp_receiver.py, which decodes every export), alternating off, on, off, on… for
``--rounds`` rounds so that a drift in the machine's load falls on both.  In each phase
``--clients`` closed-loop clients (asyncio + httpx, one keep-alive connection each) make
``--requests`` requests in all to each route, after ``--warmup``:

* ``GET /readyz`` — the database answers and is migrated: a server span and its statement
  spans (about ten) per request when tracing is on;
* ``GET /healthz`` — no database: the server span alone.

Prints one JSON line per figure: ``tracing_throughput`` (per route and mode, every phase
pooled: requests/s, p50 and p99 latency), ``tracing_overhead`` (per route: throughput on /
off, and the spans the receiver decoded per request, which must be above 0 when on and 0
when off: a run that exported nothing is not a measurement of tracing) and
``load_average`` (the 1-minute load average before and after: on a busy machine the figures
say more about the machine).

Usage: python bench/tracing.py [--requests 2000] [--clients 4] [--warmup 100] [--rounds 2]
       [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from credit_commons.gateway.route_groups import GROUPS
from own_state import forget_configured_instance, postgres_schema
from served import commons_server, free_port, percentile

# The receiver lives with the tests (one copy of it).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.otlp_receiver import OtlpReceiver, otlp_receiver

ROUTES = ("/readyz", "/healthz")
PEPPER = "YmVuY2gtdHJhY2luZy1wZXBwZXItbm90LWEtc2VjcmV0"


def emit(figure: str, **values: object) -> None:
    print(json.dumps({"figure": figure, **values}), flush=True)


async def _closed_loop(base: str, route: str, total: int, clients: int) -> list[float]:
    # ``clients`` loops share ``total`` requests; each latency in seconds.
    latencies: list[float] = []
    remaining = [total]

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            while remaining[0] > 0:
                remaining[0] -= 1
                start = time.perf_counter()
                answer = await http.get(route)
                latencies.append(time.perf_counter() - start)
                if answer.status_code != 200:
                    raise SystemExit(f"{route} answered {answer.status_code}")

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


@contextmanager
def _database(backend: str, root: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{root / 'commons.db'}"
        return
    with postgres_schema() as url:
        yield url


def _phase(
    env: dict[str, str], args: argparse.Namespace, receiver: OtlpReceiver, traced: bool
) -> dict[str, tuple[list[float], float, int, int]]:
    """One server's run: per route, the latencies, the seconds taken, the spans the
    receiver decoded (the route's server spans and their children) and the server spans
    among them (warm-up and start-up requests included; the export batches every 200 ms,
    and the server's exit flushes the rest before they are counted)."""
    phase_env = dict(env)
    if traced:
        phase_env.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
            OTEL_SERVICE_NAME="commons-bench",
            OTEL_BSP_SCHEDULE_DELAY="200",
        )
    results: dict[str, tuple[list[float], float, int, int]] = {}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    timings: dict[str, tuple[list[float], float]] = {}
    with commons_server(phase_env, port, workers=1):
        for route in ROUTES:
            asyncio.run(_closed_loop(base, route, args.warmup, args.clients))
            start = time.perf_counter()
            latencies = asyncio.run(_closed_loop(base, route, args.requests, args.clients))
            timings[route] = (latencies, time.perf_counter() - start)
    spans = receiver.snapshot()
    for route, (latencies, seconds) in timings.items():
        name = f"GET {route}"
        roots = {s.span_id for s in spans if s.name == name}
        count = sum(1 for s in spans if s.span_id in roots or s.parent_span_id in roots)
        results[route] = (latencies, seconds, count, len(roots))
    with receiver.lock:
        receiver.spans.clear()
        receiver.bodies.clear()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    forget_configured_instance()
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]
    load_before = os.getloadavg()[0]
    pooled: dict[tuple[str, str], tuple[list[float], float, int, int]] = defaultdict(
        lambda: ([], 0.0, 0, 0)
    )
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-tracing-")))
        receiver = stack.enter_context(otlp_receiver())
        url = stack.enter_context(_database(args.backend, root))
        limits = {f"{g.name}.{kind}": "100000000/minute" for g in GROUPS for kind in ("ip",)}
        env = {
            **os.environ,
            "COMMONS_DATA_DIR": str(root / "var"),
            "COMMONS_DATABASE_URL": url,
            "COMMONS_PSEUDONYM_PEPPER": PEPPER,
            "COMMONS_RATE_LIMITS": json.dumps(limits),
            "COMMONS_LOG_LEVEL": "WARNING",
        }
        for _ in range(args.rounds):
            for mode in ("off", "on"):
                for route, got in _phase(env, args, receiver, traced=mode == "on").items():
                    old = pooled[(route, mode)]
                    pooled[(route, mode)] = (
                        old[0] + got[0],
                        old[1] + got[1],
                        old[2] + got[2],
                        old[3] + got[3],
                    )
    for route in ROUTES:
        rates = {}
        for mode in ("off", "on"):
            latencies, seconds, spans, _ = pooled[(route, mode)]
            rates[mode] = len(latencies) / seconds
            emit(
                "tracing_throughput",
                route=f"GET {route}",
                tracing=mode,
                backend=args.backend,
                requests=len(latencies),
                clients=args.clients,
                requests_per_second=round(rates[mode], 1),
                p50_ms=round(percentile(latencies, 0.50) * 1000, 2),
                p99_ms=round(percentile(latencies, 0.99) * 1000, 2),
                spans_exported=spans,
            )
        _, _, on_spans, on_requests = pooled[(route, "on")]
        off_spans = pooled[(route, "off")][2]
        if on_spans == 0 or on_requests == 0 or off_spans != 0:
            raise SystemExit(f"GET {route}: {on_spans} spans exported on, {off_spans} off")
        emit(
            "tracing_overhead",
            route=f"GET {route}",
            backend=args.backend,
            throughput_on_over_off=round(rates["on"] / rates["off"], 3),
            spans_per_request_on=round(on_spans / on_requests, 2),
            baseline="tracing off, same run",
        )
    emit("load_average", before=load_before, after=os.getloadavg()[0])


if __name__ == "__main__":
    main()
