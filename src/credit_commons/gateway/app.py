"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Literal

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from credit_commons import __version__
from credit_commons.core import db
from credit_commons.core.clock import Clock
from credit_commons.core.db import transaction
from credit_commons.core.db_role import check_db_role
from credit_commons.core.durability import check_durability
from credit_commons.core.errors import UnavailableError
from credit_commons.core.heap import freeze_startup_heap
from credit_commons.core.migrate import NotGranted, SchemaGate, head_revision, schema_refusal
from credit_commons.core.settings import Settings
from credit_commons.core.tracing import flush_tracing, start_tracing
from credit_commons.gateway.admission import Admission, AdmissionMiddleware
from credit_commons.gateway.api_docs import install_api_docs
from credit_commons.gateway.denials import install_denial_handler
from credit_commons.gateway.middleware import (
    FASTAPI_TELEMETRY_OFF,
    RequestContextMiddleware,
    make_metrics,
)
from credit_commons.gateway.monitoring import install_domain_metrics, rate_limit_counter
from credit_commons.gateway.openapi import answers, install_openapi, media
from credit_commons.gateway.problems import install_problem_handlers
from credit_commons.gateway.ratelimit import (
    RateLimitMiddleware,
    close_rate_limits,
    count_act,
    install_rate_limit_handler,
    rate_limits,
)
from credit_commons.gateway.restore_guard import RestoreModeMiddleware
from credit_commons.gateway.route_prefilter import prefilter_routers
from credit_commons.gateway.routes import committee as committee_routes
from credit_commons.gateway.routes import consent as consent_routes
from credit_commons.gateway.routes import identity as identity_routes
from credit_commons.gateway.routes import internal as internal_routes
from credit_commons.gateway.routes import issuer as issuer_routes
from credit_commons.gateway.routes import lenders as lender_routes
from credit_commons.gateway.routes import log as log_routes
from credit_commons.gateway.routes import oid4vci as oid4vci_routes
from credit_commons.gateway.routes import onboarding as onboarding_routes
from credit_commons.gateway.routes import privacy as privacy_routes
from credit_commons.gateway.routes import reputation_capabilities as capability_routes
from credit_commons.gateway.routes import reputation_events as reputation_event_routes
from credit_commons.gateway.routes import reputation_rules as rules_routes
from credit_commons.gateway.routes import reputation_scores as scores_routes
from credit_commons.gateway.routes import subscribe as subscribe_routes
from credit_commons.gateway.routes import surface as surface_routes
from credit_commons.gateway.routes import verifier as verifier_routes
from credit_commons.gateway.routes import verifier_policy as verifier_policy_routes
from credit_commons.gateway.routes import zk as zk_routes
from credit_commons.gateway.routes.subscribe import StreamSlots, end_streams_on_signals
from credit_commons.gateway.schema_guard import SchemaGuardMiddleware
from credit_commons.gateway.size_limits import SizeLimitMiddleware
from credit_commons.gateway.surface import check as check_surface
from credit_commons.gateway.surface import install_surface, surface_state
from credit_commons.issuer.identifiers import record_issuer_identifier
from credit_commons.jobs import default_steps
from credit_commons.ledger.continuity import ContinuityGuard
from credit_commons.ledger.identity import LogIdentity, log_identity
from credit_commons.ledger.restore_mode import RestoreModeCache
from credit_commons.ledger.worker import LogWorker
from credit_commons.privacy.pepper import check_peppers
from credit_commons.runtime import Runtime
from credit_commons.web.headers import HtmlHeadersMiddleware
from credit_commons.web.routes import install_console

__all__ = ["assemble_app", "create_app", "schema_gate", "startup_checks"]

log = logging.getLogger("credit_commons.gateway")


class Health(BaseModel):
    """The process is serving, at this version."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["ok"]
    version: str


class Readiness(BaseModel):
    """The database answers and is migrated to this version's schema."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["ready"]
    database: str = Field(description="the SQLAlchemy dialect: sqlite or postgresql")
    schema_: str = Field(alias="schema", description="the migration revision")
    routes: str = Field(description="SHA-256 of the route registry served (GET /v1/routes)")
    mode: Literal["normal", "backup_restore"] = Field(
        default="normal",
        description="backup_restore: restored from a backup and not yet confirmed by an "
        "operator; reads are served, writes refused with 503 service.restore_mode",
    )
    backup_id: str | None = Field(
        default=None, description="in backup_restore mode: the backup restored"
    )


def startup_checks(runtime: Runtime, gate: SchemaGate | None = None) -> LogIdentity | None:
    """What a server checks before serving, once the database is migrated: the peppers
    are the ones first used (privacy/pepper.py) and the log's identity is the recorded one
    (recorded now on the log's first start; ledger/identity.py); the public URL joins the
    issuer identifiers whose credentials stay this platform's own (issuer/identifiers.py).
    Returns the log's identity, or None while the database is not migrated: then those
    checks run when ``gate`` (default: a new :func:`schema_gate`) first finds it migrated.

    First the database's durability settings (core/durability.py): production refuses
    one that can lose acknowledged commits (PostgreSQL ``synchronous_commit=off`` or
    ``fsync=off``), development warns.  Then, in production (or with
    ``COMMONS_STRICT_DB_ROLE``), the database role (core/db_role.py): one that may change
    the schema or delete log rows is refused.

    Raises :class:`~credit_commons.core.errors.ConfigurationError` (a changed pepper, a
    database that can lose acknowledged commits or a role that is not the strict one, in
    production) or
    ``LogIdentityMismatch`` (``COMMONS_LOG_ORIGIN`` disagrees with the recorded origin).
    """
    for violation in check_durability(runtime.engine, production=runtime.settings.is_production):
        log.warning("%s; %s", violation.problem, violation.hint)
    if runtime.settings.is_production or runtime.settings.strict_db_role:
        check_db_role(runtime.engine)
    try:
        if not (gate or schema_gate(runtime)).migrated():
            return None  # `commons db upgrade` first; every route but /healthz says so meanwhile
    except NotGranted:
        return None  # `commons db grant-service-role` first; the gate says so meanwhile
    return log_identity(runtime)


def _migrated_checks(runtime: Runtime) -> None:
    # The start-up checks that read tables (startup_checks), run once the schema is current.
    with transaction(runtime.sessions) as session:
        check_peppers(session, runtime)
        record_issuer_identifier(session, runtime)
    log_identity(runtime)


def schema_gate(runtime: Runtime) -> SchemaGate:
    """A gate over ``runtime``'s database that runs the start-up checks needing tables
    (peppers, issuer identifier, log identity) when it first finds the schema current."""
    return SchemaGate(runtime.engine, on_migrated=lambda: _migrated_checks(runtime))


def _log_diverged(runtime: Runtime) -> JSONResponse | None:
    """503 naming the gap when the database does not continue the published log (a
    restored backup: the log neither sequences nor signs until the operator recovers,
    docs/log.md); None when it does."""
    identity = log_identity(runtime)
    with transaction(runtime.read_sessions) as session:
        continuity = ContinuityGuard(runtime.settings).assess(session, identity, runtime.tile_cache)
    if continuity.gap is None:
        return None
    error = continuity.gap.error()
    return JSONResponse(
        {**error.problem(), "status": 503, "hint": error.hint},
        status_code=503,
        media_type="application/problem+json",
    )


def create_app(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    clock: Clock | None = None,
    run_worker: bool = False,
    freeze_heap: bool = False,
) -> FastAPI:
    """Build the HTTP app from ``settings`` (or an already built ``runtime``).

    ``run_worker`` runs the log worker in a background thread while the app is up
    (``commons serve`` does this unless ``--no-worker``).  ``freeze_heap`` hides the
    objects alive once the app has started from the garbage collector
    (:func:`~credit_commons.core.heap.freeze_startup_heap`; ``commons serve`` does this).

    Raises :class:`~credit_commons.core.errors.ConfigurationError` when the settings are
    refused (see :meth:`Settings.check_production`, and ``COMMONS_RATE_LIMITS``), or when
    the route registry is not the pinned one or not the app's routes (``surface.py``).
    """
    app = assemble_app(
        settings, runtime=runtime, clock=clock, run_worker=run_worker, freeze_heap=freeze_heap
    )
    install_surface(app, app.state.runtime.settings)  # last: every route is in place
    # A request then tries only the routers whose routes can match its path (route_prefilter.py).
    prefilter_routers(app)
    return app


def assemble_app(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    clock: Clock | None = None,
    run_worker: bool = False,
    freeze_heap: bool = False,
) -> FastAPI:
    """The app :func:`create_app` builds, before its routes are checked against the route
    registry: what ``commons routes build`` reads the routes from.  Nothing serves it (its
    start-up would fail: it has no registry state).  Raises as :func:`create_app` does but
    for the registry."""
    runtime = runtime or Runtime.build(settings, clock=clock)
    rate_limits(runtime)  # a malformed COMMONS_RATE_LIMITS stops the start, not a request
    app = FastAPI(
        title="Credit Commons",
        version=__version__,
        summary="Verifiable credit-readiness credentials, borrower consent and a public log.",
        lifespan=_lifespan(runtime, run_worker=run_worker, freeze_heap=freeze_heap),
        # (the lifespan also ends the event streams on SIGTERM/SIGINT: end_streams_on_signals)
        openapi_url="/openapi.json",
        docs_url=None,  # served by install_api_docs, with its assets (no CDN)
        redoc_url=None,
        telemetry=FASTAPI_TELEMETRY_OFF,  # our middleware's spans instead (middleware.py)
    )
    app.state.runtime = runtime
    app.state.schema_gate = schema_gate(runtime)
    app.state.restore_mode = RestoreModeCache()
    registry = CollectorRegistry()
    app.state.stream_slots = StreamSlots(
        runtime.settings.subscribe_streams,
        runtime.settings.subscribe_streams_per_credential,
        registry,
    )
    refusals = rate_limit_counter(registry)
    install_problem_handlers(app, registry)  # first: the middleware counts busy answers too
    _install_middleware(app, runtime, registry, refusals)
    install_denial_handler(app, registry)
    install_rate_limit_handler(app, refusals)
    install_domain_metrics(registry, runtime)
    _include_routers(app)
    install_console(app, count_act)  # after the API's routes and handlers: it wraps the handlers
    install_api_docs(app, openapi_url="/openapi.json")
    install_openapi(app)
    _install_operations(app, runtime, registry)
    return app


def _lifespan(
    runtime: Runtime, *, run_worker: bool, freeze_heap: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's start and stop: the start-up checks, the log worker (``run_worker``) and
    the frozen heap (``freeze_heap``) on start; the worker, the rate limits and the
    runtime closed on stop, then the spans still queued exported (when tracing)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Tracing, when configured (a no-op if the CLI started it already, core/tracing.py):
        # here so that each of `commons serve --workers N`'s processes starts its own.
        start_tracing(runtime.settings.tracing, version=__version__)
        gate: SchemaGate = _app.state.schema_gate
        startup_checks(runtime, gate)
        # The route table again (a route may have been added since create_app).  The
        # deployment's signature over the registry is made on the first GET /v1/routes: a
        # start writes nothing (its key would be the log's first entry, and a restored
        # instance held read-only would write at every start).
        check_surface(_app, runtime.settings, surface_state(_app).registry)
        end_streams_on_signals(_app.state.stream_slots)
        worker = (
            LogWorker(runtime, steps=default_steps(runtime), ready=gate.migrated)
            if run_worker
            else None
        )
        if worker is not None:
            worker.start()
        if freeze_heap:
            freeze_startup_heap()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            close_rate_limits(runtime)
            runtime.close()
            flush_tracing()  # the last spans, the worker's included (core/tracing.py)

    return lifespan


def _install_operations(app: FastAPI, runtime: Runtime, registry: CollectorRegistry) -> None:
    """``/healthz``, ``/readyz`` and ``/metrics`` (the app's own ``registry``)."""

    healthy = Health(status="ok", version=__version__)  # the same answer every time

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Liveness: the process is serving.",
        responses=answers(Health),
    )
    async def healthz() -> Health:
        # Async: a constant needs no worker thread, where a sync handler with a response
        # model costs two hops to one (the handler, then the model's validation).
        return healthy

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: the database answers and is migrated to this version's schema.",
        responses=answers(Readiness, 503),
        response_model=Readiness,  # or a problem+json 503, returned as it is
    )
    def readyz() -> Readiness | JSONResponse:
        db.ping(runtime.engine)
        # Read at every probe (not the schema gate's kept answer), so a newer version's
        # migration applied under a running process takes it out of rotation.
        error: UnavailableError | None
        try:
            error = schema_refusal(runtime.engine)
        except NotGranted as e:
            error = e
        if error is not None:
            return JSONResponse(
                error.problem(),
                status_code=error.status,
                headers={"Retry-After": str(error.retry_after)},
                media_type="application/problem+json",
            )
        diverged = _log_diverged(runtime)
        if diverged is not None:
            return diverged
        with transaction(runtime.read_sessions) as session:
            hold = app.state.restore_mode.read(session)
        return Readiness(
            status="ready",
            database=runtime.engine.dialect.name,
            schema=head_revision(),
            routes=surface_state(app).registry.sha256,
            mode="normal" if hold is None else "backup_restore",
            backup_id=None if hold is None else hold.backup_id,
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics.",
        response_class=Response,
        responses=media({CONTENT_TYPE_LATEST: {"type": "string"}}),
    )
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _include_routers(app: FastAPI) -> None:
    # Routes are matched in order, each one costing a few microseconds: the lenders' API
    # (consent-gated retrieval, the platform's busiest route) comes first, then the
    # OpenID4VP verifier (a wallet's response, the decision).  Their paths overlap no other
    # router's.
    app.include_router(consent_routes.lender_router)
    app.include_router(verifier_routes.router)
    app.include_router(log_routes.router)
    app.include_router(committee_routes.router)
    app.include_router(identity_routes.router)
    app.include_router(identity_routes.attestations_router)
    app.include_router(privacy_routes.router)
    app.include_router(privacy_routes.export_router)
    app.include_router(issuer_routes.router)
    app.include_router(issuer_routes.status_router)
    app.include_router(issuer_routes.credentials_router)
    app.include_router(issuer_routes.trust_router)
    app.include_router(verifier_policy_routes.well_known_router)
    app.include_router(verifier_policy_routes.trust_admin_router)
    app.include_router(verifier_policy_routes.policies_router)
    app.include_router(zk_routes.router)
    app.include_router(zk_routes.admin_router)
    app.include_router(rules_routes.router)
    app.include_router(reputation_event_routes.router)
    app.include_router(scores_routes.router)
    app.include_router(capability_routes.router)
    app.include_router(oid4vci_routes.router)
    oid4vci_routes.install_oauth_errors(app)
    app.include_router(log_routes.tiles_router)
    app.include_router(lender_routes.router)
    app.include_router(onboarding_routes.router)
    app.include_router(consent_routes.borrower_router)
    app.include_router(consent_routes.operator_router)
    app.include_router(subscribe_routes.router)
    app.include_router(surface_routes.router)
    app.include_router(internal_routes.router)


def _install_middleware(
    app: FastAPI, runtime: Runtime, registry: CollectorRegistry, refusals: Counter
) -> None:
    # Added innermost first, so they run in the opposite order: request ids and metrics;
    # size limits (431, 413) before the limiter reads a header; rate limits (429) and then
    # admission (503 when the route class is at capacity and its queue full) before
    # routing, so before any database connection is taken.
    # Innermost of all: backup-restore mode refuses writes (503) once they are admitted.
    app.add_middleware(
        RestoreModeMiddleware,
        runtime=runtime,
        cache=app.state.restore_mode,
        busy_total=app.state.db_busy_total,
    )
    # Before it (and before any route reads a table): 503 while the database is not
    # migrated (schema_guard.py).
    app.add_middleware(
        SchemaGuardMiddleware, gate=app.state.schema_gate, busy_total=app.state.db_busy_total
    )
    admission = Admission(runtime.settings, runtime.engine.dialect.name, registry)
    app.state.admission = admission
    app.add_middleware(AdmissionMiddleware, admission=admission)
    app.add_middleware(RateLimitMiddleware, runtime=runtime, refusals=refusals)
    app.add_middleware(SizeLimitMiddleware, settings=runtime.settings)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=make_metrics(registry),
        traced=runtime.settings.tracing.enabled,
    )
    # Outermost: the console's security headers on every HTML answer, whoever made it.
    app.add_middleware(HtmlHeadersMiddleware, production=runtime.settings.is_production)
