"""Database engine, sessions and the declarative base.

SQLAlchemy 2 with SQLite (WAL mode, foreign keys on, a busy timeout) for the embedded
default and PostgreSQL through psycopg 3 for production.  The unit of work belongs to the
caller: :func:`transaction` opens a session, commits on success and rolls back on error, so
a state change and its ledger event commit together or not at all.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from credit_commons.core import sqlite_checkpoint
from credit_commons.core.clock import utc
from credit_commons.core.durability import SQLITE_SYNCHRONOUS
from credit_commons.core.errors import ConfigurationError, UnavailableError

__all__ = [
    "PING_IDLE_AFTER",
    "READ_ONLY",
    "Base",
    "DatabaseBusy",
    "HotQuery",
    "HotStatement",
    "busy_error",
    "dispose_engine",
    "make_engine",
    "make_sessionmaker",
    "ping",
    "reference_paths",
    "snapshot",
    "transaction",
]

# Stable constraint names, so Alembic migrations are identical on SQLite and PostgreSQL.
_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=_NAMING)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling defers BEGIN and lets a SAVEPOINT outside a
    # transaction commit on RELEASE, which breaks nested units of work.  Take it over:
    # the driver runs in autocommit mode and SQLAlchemy's "begin" event emits BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Every commit is synced to the write-ahead log before it returns, so a power loss
    # takes back no acknowledged consent decision or log entry (core/durability.py).
    cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Deleted rows are overwritten, not left in free pages: an erased subject's data must
    # not survive in the database file (docs/privacy.md).
    cursor.execute("PRAGMA secure_delete=ON")
    # Indexed reads of a large file (a million consents, ten million log leaves) come from
    # memory-mapped pages and a 64 MiB page cache per connection, not a read() per page.
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


READ_ONLY = "commons_read_only"


_WRITER = "commons_writer_lock"
_WRITER_WAIT = 10.0


def _driver_begin(connection: Any, sql: str) -> None:
    try:
        connection.connection.dbapi_connection.execute(sql)
    except connection.dialect.loaded_dbapi.Error as e:
        raise _translated(e, sql, connection.dialect) from e


def _translated(error: Exception, sql: str, dialect: Any) -> Exception:
    # A driver error as SQLAlchemy would have raised it (OperationalError for "database is
    # locked"...), so callers that handle SQLAlchemy's errors handle these too.
    return DBAPIError.instance(sql, None, error, dialect.loaded_dbapi.Error)


class _SqliteWriters:
    """One SQLite writer at a time *in this process*, queued on a mutex.

    SQLite lets one transaction write; the others wait in its busy handler, which sleeps in
    steps of up to 100 ms and so turns a queue of short writes into seconds of latency.
    Threads of one process therefore take this lock before ``BEGIN IMMEDIATE`` and give it
    back once the driver's COMMIT or ROLLBACK has returned (:meth:`release_after`): waiting
    writers are handed the database at once.  Other processes (a separate worker) still
    meet SQLite's own lock and busy timeout.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def begin(self, connection: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a transaction that later writes waits
        # instead of failing when another writer got there first.  Read-only units of work
        # (sessions from `make_sessionmaker(engine, read_only=True)`) begin DEFERRED and
        # never take the write lock, so in WAL mode they do not wait for writers.
        # BEGIN goes straight to the driver: SQLAlchemy's execution layers around it cost
        # more than the statement itself, twice per request on a hot path.
        if connection.get_execution_options().get(READ_ONLY):
            _driver_begin(connection, "BEGIN")
            return
        # A thread already writing (a nested unit of work) would wait for itself: after the
        # timeout it goes on, and SQLite's own lock decides, as it would without this one.
        if self._lock.acquire(timeout=_WRITER_WAIT):
            connection.info[_WRITER] = True
        try:
            _driver_begin(connection, "BEGIN IMMEDIATE")
        except BaseException:
            self.end(connection)
            raise

    def end(self, connection: Any) -> None:
        """Give the lock back if ``connection`` (a SQLAlchemy or pooled connection: their
        ``info`` is the pooled connection's) holds it."""
        try:
            info = connection.info
        except (AttributeError, NotImplementedError):  # a raw or ad-hoc driver connection
            return
        if info.pop(_WRITER, False):
            self._lock.release()

    def release_after(self, dialect: Any) -> None:
        """Give the lock back after ``dialect``'s COMMIT and ROLLBACK, not before.

        SQLAlchemy's ``commit`` and ``rollback`` events fire *before* the driver call, and
        a COMMIT syncs the write-ahead log (``synchronous=FULL``): a writer woken there
        would meet SQLite's lock and sleep in its busy handler (1, 2, 5, 10 ms…) until long
        after the sync ended.  So the engine's dialect — its own instance, made for this
        engine by ``create_engine`` — calls the driver and then :meth:`end`.  The pool's
        reset of a returned connection goes through ``do_rollback`` too.
        """
        commit, rollback = dialect.do_commit, dialect.do_rollback

        def do_commit(connection: Any) -> None:
            try:
                commit(connection)
            finally:
                self.end(connection)

        def do_rollback(connection: Any) -> None:
            try:
                rollback(connection)
            finally:
                self.end(connection)

        dialect.do_commit, dialect.do_rollback = do_commit, do_rollback


class DatabaseBusy(UnavailableError):
    """The database could not take this unit of work in time: no pooled connection came
    free within ``COMMONS_DB_POOL_TIMEOUT``, SQLite's write lock stayed taken past its busy
    timeout, or PostgreSQL refused a lock, a connection or a serialisation.  Nothing was
    written; the same request may succeed a moment later (``retry_after``).  ``reason``
    names which (``pool_timeout``, ``locked``, ``lock_not_available``,
    ``too_many_connections``, ``serialization_failure``, ``deadlock``, ``connection_lost``:
    the server closed the connection, e.g. on a restart)."""

    code = "service.database_busy"
    title = "Service busy"
    retry_after = 1

    def __init__(self, reason: str) -> None:
        super().__init__("the service is busy; retry shortly")
        self.reason = reason


# SQLite result codes (sqlite.org/rescode.html): SQLITE_BUSY and SQLITE_LOCKED, whose
# extended codes keep the primary code in the low byte.
_SQLITE_BUSY_CODES = {5: "locked", 6: "locked"}
# PostgreSQL SQLSTATEs (PostgreSQL 15 Appendix A) that say "not now" rather than "never".
_POSTGRES_BUSY_STATES = {
    "55P03": "lock_not_available",
    "53300": "too_many_connections",
    "40001": "serialization_failure",
    "40P01": "deadlock",
}


def busy_error(error: BaseException) -> DatabaseBusy | None:
    """``error`` as a :class:`DatabaseBusy` when it only says the database is busy right
    now (a pool timeout, a lock wait that ran out, a refused or lost connection); else
    ``None``.

    The unit of work of a request (``gateway/deps.py``) and the problem handler use this
    so that such an error reaches a client as 503 with ``Retry-After``, never as 500.
    """
    if isinstance(error, PoolTimeout):
        return DatabaseBusy("pool_timeout")
    if not isinstance(error, OperationalError | DBAPIError):
        return None
    if error.connection_invalidated and error.statement is not None:
        # The server closed the connection under a statement, before any COMMIT: its
        # transaction is gone with it, and a new connection is taken next time.  Lost *at*
        # COMMIT (no statement), the write may have happened: not "busy", not retried.
        return DatabaseBusy("connection_lost")
    original = error.orig
    code = getattr(original, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _SQLITE_BUSY_CODES:
        return DatabaseBusy(_SQLITE_BUSY_CODES[code & 0xFF])
    state = getattr(original, "sqlstate", None)
    if isinstance(state, str) and state in _POSTGRES_BUSY_STATES:
        return DatabaseBusy(_POSTGRES_BUSY_STATES[state])
    return None


def dispose_engine(engine: Engine) -> None:
    """Stop the engine's background checkpoints (SQLite) and close its connections."""
    sqlite_checkpoint.stop(engine)
    engine.dispose()


PING_IDLE_AFTER = 10.0
"""Seconds a pooled PostgreSQL connection may sit idle before its next checkout pings it."""

_USED_AT = "credit_commons.used_at"


def _ping_when_idle(engine: Engine, idle_after: float) -> None:
    """Pessimistic disconnect handling for a pool, paid only by idle connections.

    SQLAlchemy's ``pool_pre_ping`` pings the server on every checkout: one round trip and
    one statement for PostgreSQL to run per unit of work (two of the twelve statements of a
    consent retrieval).  A connection checked in less than ``idle_after`` seconds ago was
    working a moment before, so this pings only one idle for longer, which is when a
    server restart, failover or idle timeout may have cut it.  A failed ping invalidates the
    pool (every connection from before it) and the checkout retries with a new connection,
    as SQLAlchemy's own pre-ping does.  A connection cut within the window fails the unit
    of work that uses it (503 ``service.database_busy``, :func:`busy_error`), and that
    failure invalidates the pool in turn, so the next request gets fresh connections.
    """
    dialect = engine.dialect

    def stamp(dbapi_connection: Any, record: Any, *_: Any) -> None:
        record.info[_USED_AT] = time.monotonic()

    def check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        used = record.info.get(_USED_AT)
        if used is not None and time.monotonic() - used < idle_after:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise InvalidatePoolError(str(error)) from error
            raise

    event.listen(engine, "connect", stamp)
    event.listen(engine, "checkin", stamp)
    event.listen(engine, "checkout", check)


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    pool_timeout: float = 5.0,
    echo: bool = False,
    ping_idle_after: float = PING_IDLE_AFTER,
) -> Engine:
    """Create an engine for ``url`` (``sqlite:///…`` or ``postgresql+psycopg://…``).

    Both keep ``pool_size`` connections and open as many again for a moment; a unit of
    work waits at most ``pool_timeout`` seconds for one (then SQLAlchemy's ``TimeoutError``,
    which :func:`busy_error` turns into :class:`DatabaseBusy`).  A PostgreSQL connection
    idle for ``ping_idle_after`` seconds is pinged before it is used again
    (:func:`_ping_when_idle`).  For SQLite the parent
    directory is created, the pragmas are set on every connection, and the write-ahead log
    is checkpointed by a background thread (:mod:`credit_commons.core.sqlite_checkpoint`);
    release the engine with :func:`dispose_engine`.
    Raises :class:`ConfigurationError` for a malformed URL or an unsupported backend.
    """
    pool = {"pool_size": pool_size, "max_overflow": pool_size, "pool_timeout": pool_timeout}
    try:
        parsed = make_url(url)
    except Exception as e:
        raise ConfigurationError(
            "COMMONS_DATABASE_URL is not a valid database URL",
            hint="use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db",
        ) from e
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        memory = parsed.database in (None, "", ":memory:")
        engine = create_engine(
            parsed,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 10},
            # A file database gets a queue of connections like PostgreSQL's (SQLAlchemy's
            # default for it is 5 + 10 and a 30 s wait); an in-memory one keeps its default
            # pool, which shares its one connection.
            **({} if memory else pool),
        )
        writers = _SqliteWriters()
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", writers.begin)
        writers.release_after(engine.dialect)
        if parsed.database and not parsed.database.startswith((":memory:", "file:")):
            # After the pragmas (the checkpointer's listener runs second); a file: URI is
            # left to SQLite's own checkpoints.
            sqlite_checkpoint.attach(engine, Path(parsed.database))
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise ConfigurationError(
                "PostgreSQL is supported through psycopg 3 only",
                hint="write the URL as postgresql+psycopg://…",
            )
        engine = create_engine(parsed, echo=echo, **pool)
        _ping_when_idle(engine, ping_idle_after)
        return engine
    raise ConfigurationError(
        f"unsupported database backend {backend!r}",
        hint="use SQLite (embedded) or PostgreSQL (production)",
    )


def make_sessionmaker(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """A session factory bound to ``engine``; sessions do not expire objects on commit.

    ``read_only`` sessions are for reads that need no snapshot spanning several statements
    — reads of append-only or immutable rows (the log's entries, tiles and checkpoints), or
    single-statement reads.  On SQLite they begin a deferred transaction instead of taking
    the write lock; on PostgreSQL they run in autocommit, saving the BEGIN and COMMIT round
    trips, so each statement sees its own snapshot.  Code that must see one consistent
    snapshot across statements, or that writes, uses the normal sessions.
    """
    if not read_only:
        return sessionmaker(bind=engine, expire_on_commit=False)
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    return sessionmaker(bind=engine.execution_options(**options), expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit if the block succeeds, roll back if it raises."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction that sees one snapshot of the database and blocks no writer.

    For long reads that must be consistent across statements (``commons log audit``).  On
    SQLite it begins ``DEFERRED`` and only reads: a WAL reader takes no write lock, and
    writers commit beside it while it keeps the snapshot of its first read (SQLite, "WAL
    mode" §2.2; the process's writer queue is not entered either).  On PostgreSQL it is
    ``REPEATABLE READ READ ONLY``: every statement sees the snapshot taken by the first one
    (PostgreSQL 15 §13.2.2), and MVCC readers never wait for writers.  Rows are streamed
    inside it with ``execution_options={"yield_per": n}``.
    """
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    with engine.connect().execution_options(**options) as connection, connection.begin():
        yield connection


# Every precompiled statement (HotQuery, HotStatement) in the order defined, and, inside
# ``reference_paths()``, the set of those that ran through the reference path.
_PRECOMPILED: list[HotQuery | HotStatement] = []
_reference_runs: set[HotQuery | HotStatement] | None = None


@contextmanager
def reference_paths() -> Iterator[
    tuple[list[HotQuery | HotStatement], set[HotQuery | HotStatement]]
]:
    """Run every :class:`HotQuery` and :class:`HotStatement` through SQLAlchemy's own Core
    execution (``session.execute(statement, params)``) instead of the precompiled DBAPI
    path, for as long as the block lasts, in every thread of the process.

    The fast paths are performance code behind the same service functions; this is their
    plain reference path.  The tests run the same flows both ways and compare what the
    services answer and store (``tests/integration/test_hot_paths.py``).  Yields the list
    of every precompiled statement and the set of those that ran inside the block, so a
    test can tell which fast paths its flow covered.  For tests and for ruling the fast
    path in or out when debugging; never nested.
    """
    global _reference_runs  # noqa: PLW0603 - one process-wide switch, read on every call
    if _reference_runs is not None:
        raise RuntimeError("reference_paths() is already active")
    ran: set[HotQuery | HotStatement] = set()
    _reference_runs = ran
    try:
        yield list(_PRECOMPILED), ran
    finally:
        _reference_runs = None


class HotQuery:
    """A SELECT on a hot path, compiled by SQLAlchemy once per dialect and run on the
    session connection's DBAPI cursor, inside the session's transaction.

    SQLAlchemy's per-call layers (statement coercion, cache keys, result processing) cost
    several times a small indexed read; this skips them.  Rows are plain tuples in the
    statement's column order, *without* result processing: SQLite hands back datetimes as
    the text SQLAlchemy stored (:func:`stored_datetime` reads both forms).  Parameters must
    be strings, integers or bytes (no datetimes: their stored form is the dialect's) unless
    the query names the one ``dialect`` it is written for (another raises ``ValueError``).
    """

    def __init__(self, statement: Any, names: tuple[str, ...], *, dialect: str = "") -> None:
        self._statement, self._names, self.dialect = statement, names, dialect
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}
        self._record = namedtuple("Record", list(statement.selected_columns.keys()))  # type: ignore[misc]
        self.defined_in: str = sys._getframe(1).f_globals.get("__name__", "?")
        _PRECOMPILED.append(self)

    def __repr__(self) -> str:
        return f"HotQuery({self.defined_in}: {' '.join(str(self._statement).split())[:100]})"

    def first(self, session: Session, **params: Any) -> Any:
        """The first row as a named tuple (columns as attributes), or ``None``."""
        rows = self.rows(session, **params)
        return self._record(*rows[0]) if rows else None

    def records(self, session: Session, **params: Any) -> list[Any]:
        """Every row as a named tuple."""
        return [self._record(*r) for r in self.rows(session, **params)]

    def rows(self, session: Session, **params: Any) -> list[tuple[Any, ...]]:
        """Run with ``params`` (the names given at construction)."""
        if _reference_runs is not None:
            _reference_runs.add(self)
            return [tuple(row) for row in session.execute(self._statement, params).all()]
        connection = session.connection()
        compiled = self._compiled.get(connection.dialect.name)
        if compiled is None:
            if self.dialect not in ("", connection.dialect.name):
                raise ValueError(f"a query for {self.dialect} only")
            statement = self._statement.compile(dialect=connection.dialect)
            placeholders = dict.fromkeys(self._names, "")
            constants = {
                k: v
                for k, v in statement.construct_params(placeholders).items()
                if k not in self._names
            }
            positions = tuple(statement.positiontup) if statement.positiontup else None
            compiled = (statement.string, positions, constants)
            self._compiled[connection.dialect.name] = compiled
        sql, positions, constants = compiled
        values = {**constants, **params}
        cursor = _run(connection, sql, [[values[k] for k in positions] if positions else values])
        try:
            return [tuple(r) for r in cursor.fetchall()]
        finally:
            cursor.close()


class HotStatement:
    r"""An INSERT or UPDATE on a hot path (one row, or many at once), compiled by SQLAlchemy
    once per dialect and run on the session connection's DBAPI cursor, inside the session's
    transaction.

    ``statement`` is ``insert(table)`` — its columns are ``names`` — or an ``update`` whose
    values and conditions are ``bindparam``\ s named ``names``.  Values go through each
    column type's bind processor for the dialect (a datetime becomes SQLite's stored text),
    as SQLAlchemy would send them; what is skipped is its per-call machinery (statement
    construction and coercion, cache keys, events, result objects), which costs several
    times the write itself.  Python-side column defaults are *not* applied: a statement
    that would need one is refused when it is compiled.
    """

    def __init__(self, statement: Any, names: tuple[str, ...]) -> None:
        self._statement, self._names = statement, names
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, list[tuple[str, Any]]]] = {}
        self.defined_in: str = sys._getframe(1).f_globals.get("__name__", "?")
        _PRECOMPILED.append(self)

    def __repr__(self) -> str:
        return f"HotStatement({self.defined_in}: {' '.join(str(self._statement).split())[:100]})"

    def _compile(self, dialect: Any) -> tuple[str, tuple[str, ...] | None, list[tuple[str, Any]]]:
        compiled = self._compiled.get(dialect.name)
        if compiled is not None:
            return compiled
        table = self._statement.table
        defaulted = [
            c.key
            for c in table.columns
            if c.key not in self._names
            and (c.onupdate is not None if self._statement.is_update else c.default is not None)
        ]
        if defaulted:
            raise ValueError(f"{table.name}: columns {defaulted} need Python-side defaults")
        if self._statement.is_insert:
            statement = self._statement.compile(dialect=dialect, column_keys=list(self._names))
        else:
            statement = self._statement.compile(dialect=dialect)
        if set(statement.binds) != set(self._names):
            raise ValueError(f"the statement's parameters are {sorted(statement.binds)}")
        processors = []
        for name, bind in statement.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((name, process))
        positions = tuple(statement.positiontup) if statement.positiontup else None
        compiled = (statement.string, positions, processors)
        self._compiled[dialect.name] = compiled
        return compiled

    def execute(self, session: Session, **params: Any) -> int:
        """Run once with ``params``; returns the number of rows changed."""
        return self.executemany(session, [params])

    def executemany(self, session: Session, rows: list[dict[str, Any]]) -> int:
        """Run once per row (``cursor.executemany``); returns the number of rows changed."""
        if not rows:
            return 0
        connection = session.connection()
        sql, positions, processors = self._compile(connection.dialect)
        if _reference_runs is not None:
            # The same refusals (above), then SQLAlchemy's own executemany.
            _reference_runs.add(self)
            return int(session.execute(self._statement, rows).rowcount)  # type: ignore[attr-defined]
        if processors:
            rows = [dict(row) for row in rows]
            for row in rows:
                for name, process in processors:
                    row[name] = process(row[name])
        values = [[row[k] for k in positions] for row in rows] if positions else rows
        cursor = _run(connection, sql, values)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()


def _run(connection: Any, sql: str, values: list[Any]) -> Any:
    # ``sql`` on the connection's DBAPI cursor, once per parameter set; driver errors raised
    # as SQLAlchemy's.  The caller reads the cursor and closes it.
    cursor = connection.connection.cursor()
    try:
        if len(values) == 1:
            cursor.execute(sql, values[0])
        else:
            cursor.executemany(sql, values)
    except connection.dialect.loaded_dbapi.Error as e:
        cursor.close()
        raise _translated(e, sql, connection.dialect) from e
    except BaseException:
        cursor.close()
        raise
    return cursor


def stored_datetime(value: Any) -> datetime:
    """A datetime read by :class:`HotQuery`: SQLite's stored text or a driver datetime,
    as aware UTC."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(parsed, datetime):
        raise TypeError("not a stored datetime")
    return utc(parsed)


def ping(engine: Engine) -> None:
    """Check that the database answers; raises :class:`UnavailableError` if not."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as e:
        raise UnavailableError("the database is not reachable") from e
