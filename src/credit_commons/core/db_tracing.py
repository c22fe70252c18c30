"""A span for each SQL statement an engine runs, when tracing is on (core/tracing.py).

SQLAlchemy's cursor events bracket each statement as the driver receives it: the text
with its placeholders (``%(id)s``, ``?``), the parameters apart.  The span carries the
text alone, so no value a statement binds (a pseudonym, a token's hash, a body's field)
reaches a trace.  Its name is the statement's kind (``SELECT``, ``INSERT``…), a name of few
values as the semantic conventions ask ("Database spans": ``{db.operation.name}``).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext
from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext

from credit_commons.core.tracing import fail, tracer

__all__ = ["MAX_STATEMENT_CHARS", "trace_engine"]

# Long statements (a bulk insert's VALUES list) are cut: the kind and the tables are at
# the start.
MAX_STATEMENT_CHARS = 2000
_SPAN = "_commons_span"
_tracer = tracer("credit_commons.db")


def trace_engine(engine: Engine) -> None:
    """Open a client span around each statement ``engine`` runs (a no-op span until a
    provider is installed)."""
    system = "postgresql" if engine.dialect.name == "postgresql" else engine.dialect.name
    event.listen(engine, "before_cursor_execute", _before(system))
    event.listen(engine, "after_cursor_execute", _after)
    event.listen(engine, "handle_error", _error)


def _before(system: str) -> Any:
    def before(
        _conn: Connection,
        _cursor: DBAPICursor,
        statement: str,
        _parameters: Any,
        context: ExecutionContext | None,
        executemany: bool,
    ) -> None:
        if context is None:
            return
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        attributes: dict[str, str | int] = {
            "db.system.name": system,
            "db.operation.name": operation,
            "db.query.text": statement[:MAX_STATEMENT_CHARS],
        }
        if executemany:
            attributes["db.operation.batch.size"] = len(_parameters or ())
        current = _tracer.start_span(operation, kind=SpanKind.CLIENT, attributes=attributes)
        setattr(context, _SPAN, current)

    return before


def _after(
    _conn: Connection,
    _cursor: DBAPICursor,
    _statement: str,
    _parameters: Any,
    context: ExecutionContext | None,
    _executemany: bool,
) -> None:
    current = getattr(context, _SPAN, None)
    if current is not None:
        current.end()
        setattr(context, _SPAN, None)


def _error(exception_context: ExceptionContext) -> None:
    current = getattr(exception_context.execution_context, _SPAN, None)
    if current is not None:
        fail(current, exception_context.original_exception)
        current.end()
        setattr(exception_context.execution_context, _SPAN, None)
