"""A ``commons serve`` for a benchmark (on a free loopback port), and the CPU time of its
processes read from Linux ``/proc`` (shared by the benchmarks that drive a server and report
its CPU per request), and the one percentile every benchmark reports its latencies with."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

__all__ = ["commons_server", "cpu_seconds", "free_port", "process_tree"]

_COMMONS = [sys.executable, "-m", "credit_commons.cli"]


@contextmanager
def commons_server(env: Mapping[str, str], port: int, workers: int) -> Iterator[int]:
    """Migrate the platform ``env`` names, run ``commons serve`` on ``port`` with ``workers``
    worker processes and no log worker until ``/readyz`` answers 200 (at most 120 s: a start
    on a loaded machine, as in the suite beside other processes), yield
    its process id, and stop it with SIGTERM.  Raises :class:`SystemExit` when it does not
    start."""
    subprocess.run([*_COMMONS, "db", "upgrade"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [*_COMMONS, "serve", "--port", str(port), "--no-worker", "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        yield server.pid
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q < 1) of ``values``: the sample at rank
    ``floor(q * n)`` of the sorted values, the largest for small samples.  Raises
    ``ValueError`` on no samples: a benchmark with nothing measured has no figure."""
    if not values:
        raise ValueError("percentile of no samples")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    """A loopback TCP port free now (for the server a benchmark starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the uvicorn supervisor and its worker processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = [pid]
    if children.exists():
        for child in children.read_text().split():
            found += process_tree(int(child))
    return found
