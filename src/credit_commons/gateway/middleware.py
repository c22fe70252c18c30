"""Request ids, access logs, Prometheus metrics and (when tracing is on) a server span for
every request (pure ASGI middleware)."""

from __future__ import annotations

import logging
import random
import re
import time

from fastapi.telemetry import TelemetryConfig
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from credit_commons.core.ids import IdGenerator
from credit_commons.core.logging import request_id_var
from credit_commons.core.tracing import span, tracer

__all__ = ["FASTAPI_TELEMETRY_OFF", "RequestContextMiddleware", "make_metrics"]

log = logging.getLogger("credit_commons.access")
# Request ids correlate log lines; nothing relies on them being unguessable, so their random
# part comes from the process's Mersenne Twister (reseeded in a forked child) instead of a
# system call per request.
_request_ids = IdGenerator(randbits=random.getrandbits)
_INCOMING_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
_tracer = tracer("credit_commons.gateway")

FASTAPI_TELEMETRY_OFF: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}
"""FastAPI's own OpenTelemetry instrumentation, off in every app of the platform.  Once a
process installs a tracer provider it would record each request's raw path (``url.path``:
a borrower's token in ``/v1/borrowers/{token}/…``) and, as logs, exception messages and
stack traces; with ``FASTAPI_OTEL_AUTO_CONFIGURE=true`` it would install exporters of its
own.  :class:`RequestContextMiddleware` makes the server spans instead."""
# W3C Trace Context only: an incoming ``traceparent`` continues the caller's trace.
# Baggage is not read (it is free text a caller chose).
_propagator = TraceContextTextMapPropagator()


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
        # The labelled series by their labels, so that a request finds its own with one
        # dict lookup instead of prometheus_client's labels() (validation and a lock) twice.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request of ``method route`` answered ``status`` in ``seconds``."""
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        series[0].inc()
        series[1].observe(seconds)


def make_metrics(registry: CollectorRegistry) -> Metrics:
    """Create the HTTP metrics in ``registry``."""
    return Metrics(registry)


class RequestContextMiddleware:
    """Gives every request an id (``X-Request-ID``), logs it once and records metrics.

    A well-formed incoming ``X-Request-ID`` is kept so traces join up across proxies;
    anything else is replaced.  The log line has method, route template, status and
    duration — never the query string, headers or body, which may carry secrets.

    With ``traced`` (tracing configured, core/tracing.py) each request is also a server
    span, named ``{method} {route template}`` (the method alone when no route matched) and
    carrying those, the status and the request id: never the raw path (it may hold a
    borrower's token), the query, a header or the client's address.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, traced: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.traced = traced

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _INCOMING_ID.fullmatch(incoming) else _request_ids.new("req")
        token = request_id_var.set(request_id)
        try:
            if not self.traced:
                await self._serve(scope, receive, send, request_id, None)
                return
            carrier = {
                name: headers[key].decode("latin-1")
                for name, key in (("traceparent", b"traceparent"), ("tracestate", b"tracestate"))
                if key in headers
            }
            method = scope.get("method", "")
            with span(
                _tracer,
                method,
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": method,
                    "url.scheme": scope.get("scheme", "http"),
                    "commons.request_id": request_id,
                },
                context=_propagator.extract(carrier),
            ) as current:
                await self._serve(scope, receive, send, request_id, current)
        finally:
            request_id_var.reset(token)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, current: Span | None
    ) -> None:
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
            template = getattr(scope.get("route"), "path", None)
            route = template or "unmatched"
            method = scope.get("method", "")
            self.metrics.record(method, route, status, elapsed)
            if current is not None:
                _finish(current, method, template, status)
            if log.isEnabledFor(logging.INFO):  # the line's fields are built only if logged
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


def _finish(current: Span, method: str, template: str | None, status: int) -> None:
    # The semantic conventions' HTTP server span: "{method} {http.route}", ERROR for 5xx.
    if template is not None:
        current.update_name(f"{method} {template}")
        current.set_attribute("http.route", template)
    current.set_attribute("http.response.status_code", status)
    if status >= 500:
        current.set_status(Status(StatusCode.ERROR))
