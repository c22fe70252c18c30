"""Structured JSON logs that never carry secrets.

Every record is one JSON object per line: time, level, logger, message, the current request
id (from a context variable set by the HTTP middleware) and any structured ``fields`` passed
as ``logger.info("msg", extra={"fields": {...}})``.  Inside a traced span (core/tracing.py)
the record also carries its ``trace_id`` and ``span_id``, so a log line and its trace
find each other.  Field names that look like secrets
(``password``, ``token``, ``secret``, ``key``, ``pepper``, ``authorization``, ``cookie``)
have their values replaced before the record is written, wherever they are nested.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "attach_trace_ids", "configure_logging", "redact", "request_id_var"]

request_id_var: ContextVar[str | None] = ContextVar("commons_request_id", default=None)

# What gives the current trace and span ids, attached by core/tracing.py once a process
# starts tracing.  Attached rather than imported: this module stays free of OpenTelemetry,
# which a uvicorn worker process would otherwise import before it answers its
# supervisor's first health check (gateway/serving.py).
_trace_ids: list[Callable[[], tuple[str, str] | None]] = []


def attach_trace_ids(source: Callable[[], tuple[str, str] | None]) -> None:
    """Have every log line carry ``trace_id`` and ``span_id`` from ``source``."""
    _trace_ids[:] = [source]


_SECRET_NAME = re.compile(
    r"(pass(word)?|secret|token|pepper|authori[sz]ation|cookie|private|(^|_)key$|"
    r"assertion|credential|signature)",
    re.IGNORECASE,
)
_REDACTED = "[redacted]"


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` with the values of secret-looking keys replaced."""
    if _depth > 8:
        return "[truncated]"
    if isinstance(value, dict):
        return {
            str(k): _REDACTED if _SECRET_NAME.search(str(k)) else redact(v, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, _depth + 1) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class JsonFormatter(logging.Formatter):
    """Formats records as single-line JSON objects."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        ids = _trace_ids[0]() if _trace_ids else None
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(redact(fields))
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type and message only: tracebacks can carry local values.
            entry["error"] = {
                "type": record.exc_info[0].__name__,
                "message": str(record.exc_info[1])[:500],
            }
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send every log record of the process to stderr as JSON lines at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Uvicorn's access log repeats what the request middleware logs, with query strings
    # that may carry codes; keep it off.
    logging.getLogger("uvicorn.access").disabled = True
