"""Overload figures: a burst of registrations far beyond what the server can take.

Prints one JSON line per figure, each with its baseline measured in the same run.

* ``overload_registration`` — unauthenticated ``POST /v1/identities`` (a self-registration:
  an identity, its sealed profile, a data key, a pseudonym and an ``identity.created``
  event; one write transaction each) through ``commons serve`` (uvicorn, one worker,
  loopback, the log worker running), on SQLite and on PostgreSQL.

  1. The *saturating concurrency* S is found by a ramp: closed-loop clients at 1, 2, 4, 8,
     16 and 32 concurrent connections (``--step-seconds`` each); S is the smallest level
     whose throughput is within 10 % of the best level's.
  2. Baseline: S clients for ``--baseline-seconds``: the saturated throughput.
  3. Overload: 4 × S clients for ``--seconds`` (60).

  Targets (issue 13 item 1): overload throughput ≥ 80 % of the saturated throughput, no
  5xx response, p99 of the accepted (2xx) requests ≤ 1 s.  Every status is counted and
  reported; a refused request (429 or 503) is retried by its client after the
  ``Retry-After`` it was given, as the API asks clients to do.

  The server runs with raised registration limits (``COMMONS_RATE_LIMITS``: the load
  comes from one loopback address, and the per-address limit of 30/minute would refuse
  it before it reached the database); every other setting is the default.  The clients
  are this script's own asyncio HTTP/1.1 connections (keep-alive, one request at a time
  each), in this process: cheap beside the server, but they share the machine with it.
  ``load_average`` is the machine's 1-minute load average before the run.

Usage: python bench/overload.py [--backends sqlite,postgresql] [--seconds 60]
       [--baseline-seconds 30] [--step-seconds 8] [--levels 1,2,4,8,16,32] [--factor 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from own_state import forget_configured_instance, postgres_schema
from served import percentile

TARGET_RATIO, TARGET_P99_S = 0.8, 1.0


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def progress(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


# -- the load ----------------------------------------------------------------------------


@dataclass
class Tally:
    """What one phase of the load saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    accepted_latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        accepted = len(self.accepted_latencies)
        return {
            "seconds": round(self.seconds, 1),
            "accepted": accepted,
            "accepted_per_s": round(accepted / self.seconds, 1) if self.seconds else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": sum(v for k, v in self.statuses.items() if k >= 500),
            "transport_errors": dict(self.errors),
            "p50_s": round(statistics.median(self.accepted_latencies), 4) if accepted else None,
            "p99_s": round(percentile(self.accepted_latencies, 0.99), 4) if accepted else None,
            "max_s": round(max(self.accepted_latencies), 4) if accepted else None,
        }


def _request(port: int) -> bytes:
    body = json.dumps({"profile": {"name": "Burst " + secrets.token_hex(4)}}).encode()
    return (
        b"POST /v1/identities HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{port}\r\n".encode()
        + b"Content-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers


async def _client(port: int, stop: float, tally: Tally, timeout: float) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.monotonic() < stop:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            started = time.monotonic()
            writer.write(_request(port))
            status, headers = await asyncio.wait_for(_response(reader), timeout)
            elapsed = time.monotonic() - started
            tally.statuses[status] += 1
            if 200 <= status < 300:
                tally.accepted_latencies.append(elapsed)
            elif status in (429, 503):
                retry = float(headers.get("retry-after", "1"))
                await asyncio.sleep(min(retry, max(0.0, stop - time.monotonic())))
            if headers.get("connection") == "close":
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as e:
            tally.errors[type(e).__name__] += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.05)
    if writer is not None:
        writer.close()


def load(port: int, clients: int, seconds: float, timeout: float = 120.0) -> Tally:
    """``clients`` closed-loop clients for ``seconds``; a request still unanswered at the
    end is waited for (up to ``timeout``) and counted."""

    async def run() -> Tally:
        tally = Tally()
        started = time.monotonic()
        stop = started + seconds
        await asyncio.gather(*(_client(port, stop, tally, timeout) for _ in range(clients)))
        tally.seconds = time.monotonic() - started
        return tally

    return asyncio.run(run())


# -- the server --------------------------------------------------------------------------


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'overload.db'}"
        return
    with postgres_schema() as url:
        yield url


@contextmanager
def serve(
    database_url: str, tmp: Path, extra: list[str], settings: dict[str, str]
) -> Iterator[int]:
    """``commons serve`` on a free loopback port over ``database_url``; yields the port."""
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")},
        "COMMONS_DATA_DIR": str(tmp / "var"),
        "COMMONS_DATABASE_URL": database_url,
        "COMMONS_RATE_LIMITS": json.dumps(
            {"registration.ip": "100000000/minute", "registration.client": "100000000/minute"}
        ),
        "COMMONS_LOG_LEVEL": "WARNING",
        **settings,
    }
    commons = [sys.executable, "-m", "credit_commons.cli"]
    subprocess.run([*commons, "db", "upgrade"], env=env, check=True, capture_output=True)
    log = (tmp / "server.log").open("wb")
    server = subprocess.Popen(
        [*commons, "serve", "--port", str(port), *extra], env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{(tmp / 'server.log').read_text()}")
            time.sleep(0.2)
        yield port
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def bench_backend(backend: str, args: argparse.Namespace) -> None:
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with (
            _database(backend, tmp) as url,
            serve(url, tmp, args.serve_args.split(), args.settings) as port,
        ):
            load(port, 4, 3.0)  # warm up
            ramp: dict[int, float] = {}
            for level in args.levels:
                tally = load(port, level, args.step_seconds)
                ramp[level] = tally.summary()["accepted_per_s"]
                progress(f"{backend}: ramp {level} clients: {tally.summary()}")
            best = max(ramp.values())
            saturating = min(level for level, rate in ramp.items() if rate >= 0.9 * best)
            baseline = load(port, saturating, args.baseline_seconds).summary()
            progress(f"{backend}: baseline at {saturating} clients: {baseline}")
            clients = args.factor * saturating
            overload = load(port, clients, args.seconds).summary()
            progress(f"{backend}: overload at {clients} clients: {overload}")
            after = load(port, 1, 2.0).summary()
    ratio = overload["accepted_per_s"] / baseline["accepted_per_s"]
    p99 = overload["p99_s"] if overload["p99_s"] is not None else float("inf")
    emit(
        figure="overload_registration",
        backend=backend,
        load_average=round(load_average, 2),
        server="commons serve " + (args.serve_args or "(defaults)") + " (uvicorn, loopback)",
        settings=args.settings,
        load="unauthenticated POST /v1/identities, closed-loop asyncio clients, keep-alive",
        rate_limits="registration.ip and .client raised to 100000000/minute (one address)",
        ramp_accepted_per_s={str(k): v for k, v in ramp.items()},
        saturating_concurrency=saturating,
        baseline=baseline,
        overload_concurrency=clients,
        overload=overload,
        after_overload=after,
        ratio=round(ratio, 3),
        target_ratio=TARGET_RATIO,
        target_p99_s=TARGET_P99_S,
        meets_target=ratio >= TARGET_RATIO
        and overload["server_errors"] == 0
        and not overload["transport_errors"]
        and p99 <= TARGET_P99_S,
    )


def main() -> int:
    forget_configured_instance()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=float, default=60.0, help="overload duration")
    parser.add_argument("--baseline-seconds", type=float, default=30.0)
    parser.add_argument("--step-seconds", type=float, default=8.0, help="each ramp level")
    parser.add_argument("--levels", default="1,2,4,8,16,32")
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--serve-args", default="", help="extra `commons serve` options")
    parser.add_argument(
        "--settings", default="{}", help='extra server settings, {"COMMONS_…": "…"} as JSON'
    )
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    args.settings = json.loads(args.settings)
    for backend in filter(None, args.backends.split(",")):
        bench_backend(backend, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
