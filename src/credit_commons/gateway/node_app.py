"""The full node's HTTP API (``commons node serve``; docs/api.md, "Full node").

Read-only mirrors at the platform's own paths, so a verifier can point at the node:
``GET /v1/blobs/{cid}``, ``GET /status-lists/{list_id}``, ``GET /v1/checkpoints/latest``,
``GET /v1/checkpoints/{size}`` (the epoch is the tree size), ``GET /v1/log/proof/inclusion``
and ``/v1/log/proof/consistency`` from the mirrored tree; ``GET /v1/node`` (pins, sizes,
counters, scoring, the lag behind the platform); ``GET /v1/scores?did=&ctx=`` (a record
the node scored itself, ``node/scoring.py``); ``GET /metrics`` (Prometheus text,
``gateway/node_metrics.py``); ``POST /v1/presentations/verify`` (the node's verifier, with
mirrored status lists); ``GET /healthz``.  Every route is rate-limited per client address
(a moving window, 429 problem+json with ``Retry-After``) and every request is logged on
``credit_commons.node.access`` (method, path, status, address; never a body).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, TypeVar

from fastapi import FastAPI, Path, Query, Request, Response
from limits import RateLimitItemPerMinute
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError, NotFoundError
from credit_commons.gateway.middleware import FASTAPI_TELEMETRY_OFF
from credit_commons.gateway.node_metrics import NodeMetrics
from credit_commons.gateway.problems import install_problem_handlers, problem_response
from credit_commons.gateway.ratelimit_memory import ProcessMemoryStorage
from credit_commons.ledger import ConsistencyProof, InclusionProof
from credit_commons.node import Mirror, NodeScorer, PlatformLag, verify_presentation
from credit_commons.node import store as node_store
from credit_commons.reputation import CTX_PATTERN
from credit_commons.verifier.schemas import PresentationCheck, SdJwtVerified

__all__ = ["NodeRateLimited", "create_node_app"]

access = logging.getLogger("credit_commons.node.access")

_T = TypeVar("_T")

_NOTE = "text/plain; charset=utf-8"
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}


class NodeRateLimited(CommonsError):
    """Too many requests from one address."""

    code = "request.rate_limited"
    title = "Too many requests"
    status = 429


class MirroredRuleSet(BaseModel):
    """A mirrored rule set version: its hash and the registry's signed token, which a
    client verifies under the platform's ``reputation-rules`` key."""

    id: str
    version: int
    hash: str
    token: str


def create_node_app(
    mirror: Mirror,
    *,
    per_minute: int = 600,
    lag: Callable[[], Mapping[str, int]] | None = None,
    metrics_ttl: float = 10.0,
    scorer: NodeScorer | None = None,
    platform_lag: PlatformLag | None = None,
) -> FastAPI:
    """The node's app over ``mirror`` (its sessions are the node's database); ``lag``
    gives the follower's pending messages per stream for ``/metrics``; ``scorer`` serves
    ``GET /v1/scores`` and the scoring state in ``GET /v1/node``; ``platform_lag`` the
    node's readings of the platform's log state, shown in ``GET /v1/node``."""
    app = FastAPI(
        title="Credit Commons full node",
        docs_url=None,
        redoc_url=None,
        telemetry=FASTAPI_TELEMETRY_OFF,
    )
    install_problem_handlers(app)
    _limit_and_log(app, per_minute)
    _mirror_routes(app, mirror, scorer, platform_lag)
    if scorer is not None:
        _score_route(app, scorer)
    missing = None if scorer is None else (lambda: scorer.missing)
    _metrics_route(app, NodeMetrics(mirror, lag=lag, missing=missing, ttl=metrics_ttl))
    _proof_routes(app, mirror)
    _verify_route(app, mirror)
    return app


def _limit_and_log(app: FastAPI, per_minute: int) -> None:
    limiter = MovingWindowRateLimiter(ProcessMemoryStorage())
    limit = RateLimitItemPerMinute(per_minute)

    @app.middleware("http")
    async def limit_and_log(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        address = request.client.host if request.client else "?"
        started = time.monotonic()
        if not limiter.hit(limit, "node", address):
            response: Response = problem_response(
                NodeRateLimited("too many requests; retry later"), request
            )
            response.headers["Retry-After"] = "60"
        else:
            response = await call_next(request)
        access.info(
            "node request",
            extra={
                "fields": {
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "client": address,
                    "ms": round((time.monotonic() - started) * 1000, 1),
                }
            },
        )
        return response


def _reader(mirror: Mirror) -> Callable[[Callable[[Session], _T]], _T]:
    def read(work: Callable[[Session], _T]) -> _T:
        with transaction(mirror.sessions) as session:
            return work(session)

    return read


def _mirror_routes(
    app: FastAPI, mirror: Mirror, scorer: NodeScorer | None, platform_lag: PlatformLag | None
) -> None:
    read = _reader(mirror)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/node", summary="The node's pins, mirrored sizes and counters.")
    def node_state() -> JsonObject:
        def state(session: Session) -> JsonObject:
            pins = node_store.pins(session)
            latest = node_store.latest_checkpoint(session)
            return {
                "platform": pins.get("platform"),
                "origin": pins.get("origin"),
                "log_vkey": pins.get("log_vkey"),
                "tree_size": node_store.tree_size(session),
                "checkpoint": None if latest is None else int(latest.size),
                "counters": dict(node_store.counters(session)),
                "forks": len(node_store.forks(session)),
                "scores": None if scorer is None else scorer.state(),
                "platform_lag": None if platform_lag is None else platform_lag.state(),
            }

        return read(state)

    @app.get("/v1/blobs/{cid}", summary="A mirrored blob, by CID.")
    def blob(cid: Annotated[str, Path(max_length=128)]) -> Response:
        body = read(lambda s: node_store.blob(s, cid))
        if body is None:
            raise NotFoundError("the node mirrors no blob with that CID")
        headers = {**_IMMUTABLE, "ETag": f'"{cid}"'}
        return Response(body, media_type="application/json", headers=headers)

    @app.get("/status-lists/{list_id}", summary="A mirrored status list, as the issuer signed it.")
    def status_list(list_id: Annotated[str, Path(pattern=r"^sl_[0-9A-Z]{26}$")]) -> Response:
        row = read(lambda s: _status(s, list_id))
        return Response(row[0], media_type=row[1], headers={"Cache-Control": "no-cache"})

    @app.get("/v1/rules/{rule_set_id}", summary="A mirrored rule set version, signed.")
    def rules(
        rule_set_id: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{2,63}$")],
        version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    ) -> MirroredRuleSet:
        return read(lambda s: _rule_set(s, rule_set_id, version))

    @app.get("/v1/checkpoints/latest", summary="The latest mirrored checkpoint (signed note).")
    def latest() -> Response:
        note = read(lambda s: _note(s, None))
        return Response(note, media_type=_NOTE, headers={"Cache-Control": "no-cache"})

    @app.get("/v1/checkpoints/{size}", summary="The mirrored checkpoint of a tree size.")
    def by_size(size: Annotated[int, Path(ge=0)]) -> Response:
        note = read(lambda s: _note(s, size))
        return Response(note, media_type=_NOTE, headers=_IMMUTABLE)


def _score_route(app: FastAPI, scorer: NodeScorer) -> None:
    @app.get(
        "/v1/scores",
        summary="A DID's score record in a context as this node computed it from its mirror.",
    )
    def score(
        did: Annotated[
            str, Query(min_length=9, max_length=128, pattern=r"^did:key:z[1-9A-HJ-NP-Za-km-z]+$")
        ],
        ctx: Annotated[str, Query(max_length=98, pattern=CTX_PATTERN)],
    ) -> JsonObject:
        return scorer.view(did, ctx)


def _metrics_route(app: FastAPI, collector: NodeMetrics) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)

    @app.get("/metrics", summary="Prometheus metrics of the node.", response_class=Response)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _proof_routes(app: FastAPI, mirror: Mirror) -> None:
    read = _reader(mirror)

    @app.get("/v1/log/proof/inclusion", summary="Inclusion proof from the mirrored tree.")
    def inclusion(
        index: Annotated[int, Query(ge=0)],
        size: Annotated[int | None, Query(ge=1)] = None,
    ) -> InclusionProof:
        return read(lambda s: node_store.inclusion(s, index, size))

    @app.get("/v1/log/proof/consistency", summary="Consistency proof from the mirrored tree.")
    def consistency(
        from_: Annotated[int, Query(alias="from", ge=1)],
        to: Annotated[int | None, Query(ge=1)] = None,
    ) -> ConsistencyProof:
        return read(lambda s: node_store.consistency(s, from_, to))


def _verify_route(app: FastAPI, mirror: Mirror) -> None:
    @app.post(
        "/v1/presentations/verify",
        summary="Verify an SD-JWT VC presentation with the mirrored status lists.",
    )
    async def verify(body: PresentationCheck) -> SdJwtVerified:
        # The platform's own answer (verifier/schemas.py): one shape on both.
        def check() -> SdJwtVerified:
            return verify_presentation(
                mirror,
                body.presentation,
                audience=body.audience,
                nonce=body.nonce,
                now=int(mirror.clock.now().timestamp()),
            )

        return await run_in_threadpool(check)


def _status(session: Session, list_id: str) -> tuple[str, str]:
    row = node_store.status_list(session, list_id)
    if row is None:
        raise NotFoundError("the node mirrors no such status list")
    return row.token, row.media_type


def _rule_set(session: Session, rule_set_id: str, version: int | None) -> MirroredRuleSet:
    row = node_store.rule_set(session, rule_set_id, version)
    if row is None:
        raise NotFoundError("the node mirrors no such rule set version")
    return MirroredRuleSet(id=row.rule_set, version=row.version, hash=row.hash, token=row.token)


def _note(session: Session, size: int | None) -> str:
    row = (
        node_store.latest_checkpoint(session)
        if size is None
        else node_store.checkpoint(session, size)
    )
    if row is None:
        raise NotFoundError("the node has mirrored no such checkpoint")
    return row.note
