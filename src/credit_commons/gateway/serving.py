"""How ``commons serve`` runs the app under uvicorn: one process, or several workers.

One worker (the default) serves the app built in the ``serve`` process itself, with the
log worker in a background thread.  With ``--workers N`` uvicorn's supervisor binds the
socket once and spawns N worker processes that share it (the kernel spreads connections
among them); each builds its own runtime and app from the same settings, without a log
worker.  The log worker runs once, in the supervising process, beside them: it is a
single writer of the log (checkpoints, anchoring), and N copies would only contend.

What several processes share and what they do not is in docs/operations.md ("Production
shape"): the database and, with ``COMMONS_REDIS_URL``, the rate limits; each process has
its own admission limits, connection pool and caches.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypedDict, cast

import uvicorn
from uvicorn.importer import import_from_string
from uvicorn.supervisors import Multiprocess

from credit_commons.core.errors import ConfigurationError
from credit_commons.core.logging import configure_logging
from credit_commons.core.settings import Settings
from credit_commons.gateway.size_limits import bounded_protocol_factory

if TYPE_CHECKING:
    from fastapi import FastAPI

    from credit_commons.ledger.worker import LogWorker

__all__ = [
    "ServeOptions",
    "TlsFiles",
    "TlsOptions",
    "build_worker_app",
    "serve_options",
    "serve_workers",
    "tls_options",
    "worker_app",
    "workers_warnings",
]

# A spawned worker imports this module (and size_limits.py) when it unpickles its
# configuration, before it answers the supervisor's health checks (5 s, then it is killed
# and spawned again): so this module does not import the app.  The worker names the app
# factory the way uvicorn names any app, "module:attribute", and uvicorn imports it once the
# worker is up (uvicorn.importer).  The package's __init__ imports nothing for the same
# reason.
_APP_FACTORY = "credit_commons.gateway.app:create_app"


class ServeOptions(TypedDict):
    """Keyword arguments of ``uvicorn.run``/``uvicorn.Config`` (see :func:`serve_options`)."""

    log_config: None
    access_log: bool
    proxy_headers: bool
    timeout_keep_alive: int
    http: type[asyncio.Protocol]


def serve_options(settings: Settings) -> ServeOptions:
    """The uvicorn options of ``commons serve`` beyond host and port: our logging, no proxy
    headers (the app decides the client address itself, trusting only
    ``COMMONS_TRUSTED_PROXIES``: uvicorn's default trusts loopback) and a parser that
    refuses over-long headers (``COMMONS_MAX_HEADER_BYTES``/``_LINE_BYTES``), as a
    picklable factory so that spawned workers receive it too.

    Idle keep-alive connections stay open ``COMMONS_HTTP_KEEP_ALIVE`` seconds (20), not
    uvicorn's 5: a client reusing a connection idle just under its own expiry (httpx's is
    5 s too) could send a request as the server closes the connection, and lose it (a read
    error, no answer: seen in the overload test).  Closing later than clients do leaves
    the choice of when to stop reusing a connection to them, which is race-free."""
    return {
        "log_config": None,
        "access_log": False,
        "proxy_headers": False,
        "timeout_keep_alive": settings.http_keep_alive,
        # A picklable factory that uvicorn calls as it would a protocol class.
        "http": cast(
            "type[asyncio.Protocol]",
            bounded_protocol_factory(settings.max_header_bytes, settings.max_header_line_bytes),
        ),
    }


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The certificate (PEM, its chain after it) and private key ``commons serve`` serves
    HTTPS with (``--ssl-certfile``, ``--ssl-keyfile``)."""

    certfile: Path
    keyfile: Path


class TlsOptions(TypedDict, total=False):
    """uvicorn's TLS keyword arguments (see :func:`tls_options`)."""

    ssl_certfile: str
    ssl_keyfile: str


def tls_options(tls: TlsFiles | None) -> TlsOptions:
    """uvicorn's keyword arguments for serving HTTPS with ``tls`` (none for plain HTTP).
    uvicorn builds the server's context with its defaults (TLS 1.2 and later)."""
    if tls is None:
        return {}
    return {"ssl_certfile": str(tls.certfile), "ssl_keyfile": str(tls.keyfile)}


def workers_warnings(settings: Settings, workers: int) -> list[str]:
    """What ``workers`` processes would get wrong with these settings, to be said at start.

    On SQLite several processes read side by side (WAL), but write one at a time through
    SQLite's file lock, which a waiting writer polls instead of queueing (its busy handler
    sleeps up to 100 ms a step), and each process admits and queues its own writers: write
    latency grows, and a burst of writes can wait past the busy timeout (answered 503
    ``service.database_busy``).  Without Redis each process counts rate limits apart.

    Raises :class:`ConfigurationError` for several workers in production without
    ``COMMONS_REDIS_URL`` (production already refuses SQLite).
    """
    if workers <= 1:
        return []
    problems: list[str] = []
    if settings.resolved_database_url.startswith("sqlite"):
        problems.append(
            f"{workers} worker processes on SQLite read side by side but write one at a time "
            "through SQLite's file lock, which waiting writers poll: write latency grows and a "
            "burst of writes may be answered 503; use PostgreSQL for several workers "
            "(docs/operations.md)"
        )
    if settings.redis_url is None:
        if settings.is_production:
            raise ConfigurationError(
                f"--workers {workers} in production needs COMMONS_REDIS_URL",
                hint="rate limits kept in process memory are counted by each worker apart: "
                "share them through Redis",
            )
        problems.append(
            f"rate limits are kept in each of the {workers} worker processes apart: a client "
            f"may make up to {workers} times each limit (set COMMONS_REDIS_URL to share them)"
        )
    return problems


def worker_app(settings: Settings) -> FastAPI:
    """The app of one spawned worker process (uvicorn calls this, ``factory=True``, in the
    worker): our JSON logging, then :func:`build_worker_app` (whose start-up starts
    tracing when configured: this module imports no OpenTelemetry, see above)."""
    configure_logging(settings.log_level)
    return build_worker_app(settings)


def build_worker_app(settings: Settings) -> FastAPI:
    """A worker process's app: its own runtime over ``settings``, no log worker (the
    supervising process runs the one log worker), the start-up heap frozen.

    Raises :class:`ConfigurationError` when the settings are refused."""
    create_app = import_from_string(_APP_FACTORY)
    app: FastAPI = create_app(settings, run_worker=False, freeze_heap=True)
    return app


WORKER_HEALTHCHECK_TIMEOUT: Final = 60
"""Seconds the supervisor waits for a worker's answer to its liveness ping before it kills
the worker as hung.  Uvicorn's default, 5 s, is shorter than a spawned worker takes to
import the platform on a busy 2-core machine (the ping is answered by a
thread the worker starts only once its imports are done): the supervisor then killed each
worker while it was still starting, and its replacement likewise, and no worker ever served.
A worker that really hangs is still replaced, a minute later."""


def serve_workers(
    settings: Settings,
    workers: int,
    *,
    log_worker: LogWorker | None,
    tls: TlsFiles | None = None,
) -> None:
    """Serve with ``workers`` processes under uvicorn's supervisor (which restarts a worker
    that dies and stops them all on SIGINT/SIGTERM), running ``log_worker`` (a
    :class:`~credit_commons.ledger.worker.LogWorker`, or None) in this process meanwhile;
    HTTPS with ``tls``.  Returns when the supervisor stops."""
    config = uvicorn.Config(
        partial(worker_app, settings),
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT,
        **serve_options(settings),
        **tls_options(tls),
    )
    sock = config.bind_socket()
    if log_worker is not None:
        log_worker.start()
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        if log_worker is not None:
            log_worker.stop()
        sock.close()
