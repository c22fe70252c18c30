"""The SQLite writers of one process queue on a mutex (core/db.py ``_SqliteWriters``) that is
held until the driver's COMMIT has returned: a writer waiting for another's commit — which
syncs the write-ahead log — is handed the database once it ended, instead of meeting
SQLite's lock and sleeping in its busy handler."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from credit_commons.core import db
from credit_commons.core.db import dispose_engine, make_engine, make_sessionmaker, transaction

#: How long the first writer's COMMIT is held up (a slow sync of the log).
SLOW_COMMIT = 0.3


def test_a_waiting_writer_begins_after_the_commit_not_inside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    sessions = make_sessionmaker(engine)
    try:
        with transaction(sessions) as session:
            session.execute(sa.text("CREATE TABLE t (v INTEGER)"))
        begins: dict[str, float] = {}
        real_begin = db._driver_begin

        def timed_begin(connection: Any, sql: str) -> None:
            started = time.monotonic()
            real_begin(connection, sql)
            begins[threading.current_thread().name] = time.monotonic() - started

        monkeypatch.setattr(db, "_driver_begin", timed_begin)
        committing = threading.Event()

        def slow_commit(statement: str) -> None:
            # SQLite's trace hook runs as the COMMIT starts, in the committing thread.
            if statement == "COMMIT":
                committing.set()
                time.sleep(SLOW_COMMIT)

        def first() -> None:
            with transaction(sessions) as session:
                session.execute(sa.text("INSERT INTO t VALUES (1)"))
                raw = session.connection().connection.dbapi_connection
                assert raw is not None
                raw.set_trace_callback(slow_commit)
            raw.set_trace_callback(None)

        def second() -> None:
            assert committing.wait(10)
            with transaction(sessions) as session:
                session.execute(sa.text("INSERT INTO t VALUES (2)"))

        threads = [threading.Thread(target=f, name=f.__name__) for f in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        # The second writer waited on the process's mutex while the first committed; its
        # BEGIN IMMEDIATE then found the database free (it did not sleep in SQLite's busy
        # handler until after the slow commit).
        assert begins["second"] < SLOW_COMMIT / 3
        with transaction(sessions) as session:
            assert session.execute(sa.text("SELECT count(*) FROM t")).scalar() == 2
    finally:
        dispose_engine(engine)


def test_a_rollback_gives_the_writer_lock_back(tmp_path: Path) -> None:
    # A failed unit of work releases the mutex (after its ROLLBACK): the next writer is not
    # kept waiting for the lock's timeout.
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    sessions = make_sessionmaker(engine)
    try:

        def failing() -> None:
            with transaction(sessions) as session:
                session.execute(sa.text("CREATE TABLE t (v INTEGER)"))
                raise RuntimeError("undo")

        with pytest.raises(RuntimeError):
            failing()
        started = time.monotonic()
        done = threading.Event()

        def writer() -> None:
            with transaction(sessions) as session:
                session.execute(sa.text("CREATE TABLE t (v INTEGER)"))
            done.set()

        thread = threading.Thread(target=writer)
        thread.start()
        thread.join(30)
        assert done.is_set()
        assert time.monotonic() - started < 1.0
    finally:
        dispose_engine(engine)
