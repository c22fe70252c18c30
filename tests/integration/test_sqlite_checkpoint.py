"""The background WAL checkpointer of the embedded SQLite database (core/sqlite_checkpoint)."""

from __future__ import annotations

import gc
import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa

from credit_commons.core import sqlite_checkpoint
from credit_commons.core.db import dispose_engine, make_engine


def _wal_pages(path: Path) -> int:
    # Frames in the log that are not yet in the database file, read without checkpointing.
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size // 4120 if wal.exists() else 0


def _write(engine: sa.Engine, rows: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO t (v) VALUES (:v)"), [{"v": "x" * 2000} for _ in range(rows)]
        )


def _wait(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


def test_the_log_is_checkpointed_by_the_thread_not_by_writers(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    checkpointer = sqlite_checkpoint.checkpointer_of(engine)
    assert checkpointer is not None
    assert not checkpointer.running  # it starts with the first connection
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        # Writers checkpoint themselves only past the safety net, not at SQLite's 1,000.
        assert (
            connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
            == sqlite_checkpoint.SAFETY_NET_PAGES
        )
    assert checkpointer.running
    before = checkpointer.checkpoints
    _write(engine, 3_000)  # about 1,500 pages: a writer would have checkpointed at 1,000
    assert _wait(lambda: checkpointer.checkpoints > before)
    # Everything written is in the database file now: a fresh connection that checkpoints
    # finds nothing left to copy.
    probe = sqlite3.connect(path)
    busy, pages, done = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    probe.close()
    assert busy == 0
    assert pages == done
    dispose_engine(engine)
    assert not checkpointer.running
    assert sqlite_checkpoint.checkpointer_of(engine) is None


def test_stop_is_idempotent_and_checkpoints_once_more(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    checkpointer = sqlite_checkpoint.checkpointer_of(engine)
    assert checkpointer is not None
    checkpointer.interval = 3600.0  # only the final checkpoint at stop can run
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    _write(engine, 200)
    assert _wal_pages(path) > 0
    sqlite_checkpoint.stop(engine)
    sqlite_checkpoint.stop(engine)
    assert not checkpointer.running
    assert checkpointer.checkpoints == 1
    # Used again after the stop, writers go back to SQLite's own threshold.
    engine.dispose()
    with engine.connect() as connection:
        assert (
            connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
            == sqlite_checkpoint.DEFAULT_PAGES
        )
    assert not checkpointer.running
    # The data is intact and readable after the engine is gone.
    engine.dispose()
    probe = sqlite3.connect(path)
    assert probe.execute("SELECT count(*) FROM t").fetchone() == (200,)
    probe.close()


def test_no_thread_for_memory_or_uri_databases(tmp_path: Path) -> None:
    for url in ("sqlite:///:memory:", f"sqlite:///file:{tmp_path / 'u.db'}?mode=rwc&uri=true"):
        engine = make_engine(url)
        assert sqlite_checkpoint.checkpointer_of(engine) is None
        dispose_engine(engine)


def test_a_dropped_engine_ends_its_thread(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    _write_table(engine)
    checkpointer = sqlite_checkpoint.checkpointer_of(engine)
    assert checkpointer is not None
    thread = checkpointer._thread
    assert thread is not None
    assert thread.is_alive()
    engine.dispose()
    del engine, checkpointer
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


def _write_table(engine: sa.Engine) -> None:
    # In a function of its own, so no local name keeps the connection (and the engine).
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")


def test_a_missing_file_is_waited_for_not_created(tmp_path: Path) -> None:
    checkpointer = sqlite_checkpoint.WalCheckpointer(tmp_path / "absent.db", interval=0.01)
    assert checkpointer._connect() is None
    assert not (tmp_path / "absent.db").exists()
