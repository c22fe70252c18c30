"""Sessions whose every statement commits by itself (PostgreSQL's autocommit), for a write
that is one statement: a state change and its ledger event written together by
data-modifying CTEs (``events.recorded_with``), atomic as that one statement, without the
BEGIN and COMMIT round trips a unit of work of ``Runtime.sessions`` adds around it.

Only for such single-statement writes: two statements in one of these sessions are two
transactions.  Callers use them on PostgreSQL only (SQLite has no data-modifying CTEs).
"""

from __future__ import annotations

from typing import Final, cast

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["autocommit_sessions"]

# The factory is kept on its engine, not in a module-level mapping keyed by it: the factory
# is bound to the engine (through its autocommit copy), so a mapping holding the factory
# would hold the engine too, and even a weak-keyed one would then keep every engine ever
# made.  On the engine it is a reference cycle (engine → factory → engine) that the
# garbage collector frees with the engine.
_ATTRIBUTE: Final = "_credit_commons_autocommit_sessions"


def autocommit_sessions(engine: Engine) -> sessionmaker[Session]:
    """The session factory of ``engine`` whose statements commit one by one (made once per
    engine, and freed with it)."""
    made = cast("sessionmaker[Session] | None", engine.__dict__.get(_ATTRIBUTE))
    if made is None:
        bound = engine.execution_options(isolation_level="AUTOCOMMIT")
        made = sessionmaker(bind=bound, expire_on_commit=False)
        setattr(engine, _ATTRIBUTE, made)
    return made
