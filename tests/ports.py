"""Free TCP ports for the servers a test starts, safe when the suite runs in parallel.

A port is handed to a server by number, so there is a moment between choosing it and the
server binding it.  Two things could take it in that moment: another pytest-xdist worker
choosing at the same time, and any outgoing connection (to PostgreSQL, Redis, a test
server), which the kernel gives a port from its ephemeral range.  So ports are chosen
below that range, from a block of its own for each worker, at a random place in the block,
and only if nothing is bound to them now.
"""

from __future__ import annotations

import os
import random
import socket

FIRST = 20_000
"""The lowest port handed out; below Linux's default ephemeral range (32768–60999)."""
BLOCK = 1_500
"""Ports in each worker's block; eight blocks fit below the ephemeral range."""
BLOCKS = 8


def worker_index() -> int:
    """The pytest-xdist worker number (``gw3`` is 3), 0 when the suite runs in one process."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name.removeprefix("gw") or 0)


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing listens on or is bound to, in this worker's block.

    Raises ``RuntimeError`` when every port of the block is taken (never seen in practice).
    """
    start = FIRST + (worker_index() % BLOCKS) * BLOCK
    offset = random.randrange(BLOCK)
    for step in range(BLOCK):
        port = start + (offset + step) % BLOCK
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}-{start + BLOCK - 1} on {host}")
