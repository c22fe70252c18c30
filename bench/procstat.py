"""CPU time of a server's processes, read from Linux ``/proc`` (shared by the benchmarks
that drive a ``commons serve`` and report the server's CPU per request)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_seconds", "process_tree"]


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
