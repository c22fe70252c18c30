"""Background WAL checkpoints for the embedded SQLite database.

In WAL mode SQLite appends every commit to the write-ahead log and copies the log back into
the database file in a *checkpoint*.  By default the connection whose commit pushes the log
past 1,000 pages runs that checkpoint itself, inside its commit, with an ``fsync`` of the log
and of the database file: a bulk issuance commit then takes 20–40 ms instead of 5–8, and an
unlucky small write (a consent-gated retrieval) waits for pages other requests wrote.

Here a thread of the process checkpoints instead, a few times a second, on a connection of
its own: ``PRAGMA wal_checkpoint(PASSIVE)`` copies what it can without waiting for readers or
writers, and the ``sqlite3`` module releases the GIL while it does, so the copying and the
``fsync`` run beside the request threads.  The writers keep SQLite's automatic checkpoint as
a safety net, at :data:`SAFETY_NET_PAGES` instead of 1,000, so the log stays bounded when the
thread falls behind (or a forked child has not started its own yet).

Durability is unchanged: a commit is in the log, synced (``synchronous=FULL``,
``core/durability.py``), when it returns, whoever checkpoints it later.  No library does
this for SQLAlchemy, so it is written here.

The thread starts on the engine's first connection in each process (a forked worker starts
its own), stops with :func:`stop` (``Runtime.close``), and ends by itself when its engine
is garbage-collected or the database file disappears.  A process that forks while the
thread runs should fork before the engine's first connection (as pre-forking servers build
their app in each worker): the thread may hold SQLite's mutexes at the moment of a fork.
Databases named by a ``file:`` URI are left to SQLite's own checkpoints.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

__all__ = ["INTERVAL", "SAFETY_NET_PAGES", "WalCheckpointer", "attach", "stop"]

INTERVAL = 0.25
"""Seconds between background checkpoints."""

SAFETY_NET_PAGES = 16_384
"""Log size (pages, 64 MiB at 4 KiB) past which a committing writer checkpoints itself."""

DEFAULT_PAGES = 1_000
"""SQLite's own threshold, restored for connections made after :meth:`WalCheckpointer.stop`."""

_log = logging.getLogger(__name__)
_by_engine: weakref.WeakKeyDictionary[Engine, WalCheckpointer] = weakref.WeakKeyDictionary()


class WalCheckpointer:
    """Checkpoints one SQLite database file from a background thread (see the module)."""

    def __init__(self, path: Path, *, interval: float = INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self.checkpoints = 0  # checkpoints that copied at least one page (for tests, metrics)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        """Engine ``connect`` listener: the safety-net threshold, and the thread (once per
        process)."""
        # Once stopped (the engine disposed but used again), writers checkpoint as SQLite
        # does by default: nothing else would.
        pages = DEFAULT_PAGES if self._stop.is_set() else SAFETY_NET_PAGES
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA wal_autocheckpoint={pages}")
        cursor.close()
        self.ensure_running()

    def ensure_running(self) -> None:
        """Start the thread if this process has none running (a forked child inherits the
        object but not the thread)."""
        with self._lock:
            pid = os.getpid()
            alive = self._thread is not None and self._thread.is_alive()
            if self._stop.is_set() or (alive and self._pid == pid):
                return
            thread = threading.Thread(
                target=_run, args=(weakref.ref(self),), name="sqlite-checkpoint", daemon=True
            )
            try:
                thread.start()
            except RuntimeError:  # the interpreter is shutting down: no new threads
                return
            self._pid, self._thread = pid, thread

    def checkpoint(self, connection: sqlite3.Connection) -> None:
        """One passive checkpoint (counted in :attr:`checkpoints` if it copied a page)."""
        _busy, _pages, done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if done > 0:
            self.checkpoints += 1

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop the thread after one last checkpoint; idempotent."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _connect(self) -> sqlite3.Connection | None:
        # Read-write, never create: before the application has created the file (and set
        # WAL mode in it) there is nothing to checkpoint.
        if not self.path.exists():
            return None
        connection = sqlite3.connect(
            f"{self.path.resolve().as_uri()}?mode=rw",
            uri=True,
            timeout=0,
            isolation_level=None,
            check_same_thread=False,
        )
        connection.execute("PRAGMA busy_timeout=0")
        return connection


def _run(ref: weakref.ReferenceType[WalCheckpointer]) -> None:
    # The thread holds the checkpointer only weakly, so an engine dropped without stop()
    # does not keep a thread (and a file handle) alive.
    connection: sqlite3.Connection | None = None
    failures = 0
    try:
        while True:
            owner = ref()
            if owner is None:
                return
            stopping = owner._stop.wait(owner.interval)
            try:
                if connection is None:
                    connection = owner._connect()
                if connection is not None:
                    owner.checkpoint(connection)
                    failures = 0
            except sqlite3.Error as e:
                failures += 1
                if failures in (1, 100):  # once, and again if it persists (no log flood)
                    _log.warning("background WAL checkpoint failed: %s", e)
                if connection is not None and not owner.path.exists():
                    return  # the database was removed (a test's temporary directory)
                time.sleep(min(1.0, owner.interval * failures))
            if stopping:
                return
            del owner
    finally:
        if connection is not None:
            connection.close()


def attach(engine: Engine, path: Path) -> WalCheckpointer:
    """Checkpoint ``path`` (the engine's database file) in the background from the engine's
    first connection on; :func:`stop` ends it."""
    checkpointer = WalCheckpointer(path)
    event.listen(engine, "connect", checkpointer.on_connect)
    _by_engine[engine] = checkpointer
    return checkpointer


def checkpointer_of(engine: Engine) -> WalCheckpointer | None:
    """The background checkpointer of ``engine``, if it has one."""
    return _by_engine.get(engine)


def stop(engine: Engine) -> None:
    """Stop ``engine``'s background checkpointer, if it has one."""
    checkpointer = _by_engine.pop(engine, None)
    if checkpointer is not None:
        checkpointer.stop()
