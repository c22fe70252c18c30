"""The garbage collector and long-running processes.

A server's startup leaves a few hundred thousand long-lived objects (modules, SQLAlchemy
and pydantic metadata, compiled schemas).  CPython's cyclic collector rescans all of them in
every full collection, and a busy process triggers one every few hundred milliseconds: a
bulk issuance spent about 15 % of its time there, in pauses of 100 ms and more.
:func:`freeze_startup_heap` collects once and then moves every object alive into the
collector's permanent generation (``gc.freeze``, the technique the Python documentation and
large Django deployments use), so later collections scan only what requests allocate.

Frozen objects are still freed by reference counting; only a cycle among them that becomes
garbage later is never collected, which is why this is called once, after startup, by the
long-running commands (``commons serve``, ``commons worker``, ``commons issuer
issue-batch``) and not by code that builds many short-lived apps (tests).
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_heap"]


def freeze_startup_heap() -> int:
    """Collect, then freeze every object now alive; returns how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
