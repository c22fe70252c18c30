"""Request ids, access logs and Prometheus metrics for every request (pure ASGI middleware)."""

from __future__ import annotations

import logging
import random
import re
import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from credit_commons.core.ids import IdGenerator
from credit_commons.core.logging import request_id_var

__all__ = ["RequestContextMiddleware", "make_metrics"]

log = logging.getLogger("credit_commons.access")
# Request ids correlate log lines; nothing relies on them being unguessable, so their random
# part comes from the process's Mersenne Twister (reseeded in a forked child) instead of a
# system call per request.
_request_ids = IdGenerator(randbits=random.getrandbits)
_INCOMING_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


class Metrics:
    """The HTTP metrics of one app, in the app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "commons_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "commons_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )


def make_metrics(registry: CollectorRegistry) -> Metrics:
    """Create the HTTP metrics in ``registry``."""
    return Metrics(registry)


class RequestContextMiddleware:
    """Gives every request an id (``X-Request-ID``), logs it once and records metrics.

    A well-formed incoming ``X-Request-ID`` is kept so traces join up across proxies;
    anything else is replaced.  The log line has method, route template, status and
    duration — never the query string, headers or body, which may carry secrets.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _INCOMING_ID.fullmatch(incoming) else _request_ids.new("req")
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "fields": {
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                    }
                },
            )
            request_id_var.reset(token)
