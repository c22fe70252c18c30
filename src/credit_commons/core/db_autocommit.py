"""Sessions whose every statement commits by itself (PostgreSQL's autocommit), for a write
that is one statement: a state change and its ledger event written together by
data-modifying CTEs (``events.recorded_with``), atomic as that one statement, without the
BEGIN and COMMIT round trips a unit of work of ``Runtime.sessions`` adds around it.

Only for such single-statement writes: two statements in one of these sessions are two
transactions.  Callers use them on PostgreSQL only (SQLite has no data-modifying CTEs).
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["autocommit_sessions"]

_MADE: WeakKeyDictionary[Engine, sessionmaker[Session]] = WeakKeyDictionary()


def autocommit_sessions(engine: Engine) -> sessionmaker[Session]:
    """The session factory of ``engine`` whose statements commit one by one (made once per
    engine, forgotten with it)."""
    made = _MADE.get(engine)
    if made is None:
        bound = engine.execution_options(isolation_level="AUTOCOMMIT")
        made = _MADE[engine] = sessionmaker(bind=bound, expire_on_commit=False)
    return made
